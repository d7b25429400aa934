"""Originators a server chooses, through to Home Assistant's real HTTP server.

An in-process asyncssh server reports what it likes as a visitor's address: another originator's
stand-in (to be believed as the reverse proxy of the README's recipe), or an IPv6 scope id
holding a line break (to forge a log line). Home Assistant must see a canonical address that is
no other originator's, and no log line may hold the injected break.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv6Address, ip_address

import asyncssh
import pytest

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.ssh_callhome.addresses import STAND_IN_NETWORK, visitor_address
from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_PRIVATE_KEY,
    CONF_REFUSED_NETWORKS,
    CONF_REMOTE_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_VISITOR_REFUSED,
)
from custom_components.ssh_callhome.engine.state import Status
from harness.fault_server import FaultServer
from harness.ha_http import RemoteView, start_home_assistant_http
from harness.integration import load, tunnel_of
from harness.network import LOOPBACK, free_port, wait_until
from harness.secrets import record_texts

# The proxy's stand-in that the README's recipe trusts (127.0.0.2's), claimed by the server.
PROXY_STAND_IN = "64:ff9b:1::7f00:2"
HOME_NETWORK_ADDRESS = "192.168.1.50"
INJECTED = "\nFAKE LOG LINE"
# Link-local and public addresses, each with a scope id that starts a forged log line; the last
# in the refused networks.
SCOPED = [f"fe80::1%eth0{INJECTED}", f"2001:db8::1%eth0{INJECTED}", f"2001:db8:bad::1%{INJECTED}"]
REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"


@pytest.fixture
async def ha_http_port(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant set up for a reverse proxy, as the README's recipe says."""
    yield await start_home_assistant_http(
        hass, use_x_forwarded_for=True, trusted_proxies=[f"{PROXY_STAND_IN}/128"]
    )
    await hass.http.stop()


@pytest.fixture
def forged_entry(
    hass: HomeAssistant, ha_http_port: int, fault_server: FaultServer, client_key_text: str
) -> MockConfigEntry:
    """An entry for the in-process server: refuses one network, one connection per visitor."""
    data = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: fault_server.port,
        CONF_USERNAME: "tunnel",
        CONF_REMOTE_PORT: free_port(),
        CONF_PRIVATE_KEY: client_key_text,
        CONF_HOST_KEY: fault_server.host_key.export_public_key().decode(),
    }
    options = {
        **DEFAULT_OPTIONS,
        CONF_REFUSED_NETWORKS: "2001:db8:bad::/48",
        CONF_MAX_CONNECTIONS_PER_VISITOR: 1,
    }
    entry = MockConfigEntry(domain=DOMAIN, title="tunnel@fault", data=data, options=options)
    entry.add_to_hass(hass)
    return entry


async def load_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Load `entry` with RemoteView registered, and wait until the tunnel is up."""
    hass.http.register_view(RemoteView())
    await load(hass, entry)
    await wait_until(lambda: tunnel_of(entry).state.status is Status.CONNECTED, 10, "up")


async def answer(
    fault_server: FaultServer, entry: MockConfigEntry, orig_host: str, *headers: bytes
) -> tuple[int, str]:
    """Home Assistant's status and request.remote for a visitor the server calls `orig_host`."""
    reader, writer = await open_from(fault_server, entry, orig_host)
    writer.write(REQUEST + b"".join(header + b"\r\n" for header in headers) + b"\r\n")
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


async def remote_seen(fault_server: FaultServer, entry: MockConfigEntry, orig_host: str) -> str:
    """Home Assistant's request.remote for a visitor the server calls `orig_host`."""
    status, remote = await answer(fault_server, entry, orig_host)
    assert status == 200, remote
    return remote


async def open_from(
    fault_server: FaultServer, entry: MockConfigEntry, orig_host: str
) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
    settings = tunnel_of(entry).settings
    return await fault_server.open_forwarded(settings.bind_address, settings.remote_port, orig_host)


async def test_a_claimed_stand_in_is_not_the_trusted_proxy(
    hass: HomeAssistant, fault_server: FaultServer, forged_entry: MockConfigEntry
) -> None:
    await load_up(hass, forged_entry)
    seen = await remote_seen(fault_server, forged_entry, PROXY_STAND_IN)
    print(f"{PROXY_STAND_IN} is seen as {seen}")
    assert seen != PROXY_STAND_IN
    assert ip_address(seen) in STAND_IN_NETWORK
    # Claiming a visitor from the home network: an untrusted proxy, refused outright.
    claim = b"X-Forwarded-For: " + HOME_NETWORK_ADDRESS.encode()
    assert (await answer(fault_server, forged_entry, PROXY_STAND_IN, claim))[0] == 400
    # The real proxy's address is still the proxy: the recipe works as before.
    assert await answer(fault_server, forged_entry, "127.0.0.2", claim) == (
        200,
        HOME_NETWORK_ADDRESS,
    )
    assert await hass.config_entries.async_unload(forged_entry.entry_id)


async def test_a_scope_id_never_reaches_home_assistant_or_a_log_line(
    hass: HomeAssistant,
    fault_server: FaultServer,
    forged_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = async_capture_events(hass, EVENT_VISITOR_REFUSED)
    await load_up(hass, forged_entry)
    link_local, public, refused = SCOPED
    for scoped in (link_local, public):
        seen = await remote_seen(fault_server, forged_entry, scoped)
        print(f"{scoped!r} is seen as {seen}")
        assert seen == visitor_address(scoped)
        assert seen == str(IPv6Address(seen))  # canonical: no scope id
    # The per-visitor cap (1) refuses the second of two at once: its warning names the visitor.
    _reader, holder = await open_from(fault_server, forged_entry, link_local)
    with pytest.raises(asyncssh.ChannelOpenError):
        await open_from(fault_server, forged_entry, link_local)
    # The refused networks turn the other away: debug log line, event.
    with pytest.raises(asyncssh.ChannelOpenError):
        await open_from(fault_server, forged_entry, refused)
    holder.close()
    await wait_until(lambda: bool(events), 5, "refused event")
    await hass.async_block_till_done()
    assert [event.data["address"] for event in events] == ["2001:db8:bad::1%\\nFAKE LOG LINE"]
    texts = record_texts(caplog.records)
    assert any("fe80::/64 holds 1" in text for text in texts)  # the visitor as the caps count it
    assert not [text for text in texts if INJECTED in text]
    assert await hass.config_entries.async_unload(forged_entry.entry_id)
