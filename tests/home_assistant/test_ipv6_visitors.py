"""A visitor over IPv6, end to end: a real OpenSSH server listening on ::1 for the tunnel's port
(GatewayPorts no: it binds both loopbacks and reports each visitor's own address), Home
Assistant's real HTTP server in process. The visitor's ::1 reaches Home Assistant as its
stand-in, and the per-visitor cap and the networks allowed and refused apply to it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address

import pytest
import pytest_socket  # type: ignore[import-untyped]

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.addresses import STAND_IN_NETWORK, visitor_address
from custom_components.ssh_callhome.const import CONF_REMOTE_PORT
from harness.ha_http import load_with_remote_view
from harness.integration import tunnel_of
from harness.network import LOOPBACK, connect_from, wait_until

IPV6_LOOPBACK = "::1"
REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# The per-visitor cap in these tests: the options form's lowest.
PER_VISITOR = 6


@pytest.fixture(autouse=True)
def ipv6_loopback(socket_enabled: None) -> Iterator[None]:
    """Connections to ::1 too (the next test's setup narrows it to 127.0.0.1 again).

    Skip where this machine has no IPv6 loopback.
    """
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((IPV6_LOOPBACK, 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    pytest_socket.socket_allow_hosts([LOOPBACK, IPV6_LOOPBACK])
    yield
    pytest_socket.socket_allow_hosts([LOOPBACK])


async def connect_over_ipv6(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(IPV6_LOOPBACK, port)


async def answer_to(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """What a request gets back; b"" when the visitor is refused (closed, or reset)."""
    writer.write(REQUEST)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def seen_as(port: int, source: str) -> str | None:
    """The address Home Assistant saw for a visitor from `source`; None when refused."""
    if source == IPV6_LOOPBACK:
        reply = await answer_to(*await connect_over_ipv6(port))
    else:
        reply = await answer_to(*await connect_from(port, source))
    return reply.partition(b"\r\n\r\n")[2].decode() if reply else None


@pytest.fixture
async def tunnel_port(
    hass: HomeAssistant, entry: MockConfigEntry, request: pytest.FixtureRequest
) -> AsyncIterator[int]:
    """The entry, with the options the test is marked with, up; the server's port for visitors."""
    options = getattr(request, "param", {})
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})
    await load_with_remote_view(hass, entry)
    yield entry.data[CONF_REMOTE_PORT]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_ipv6_visitor_reaches_home_assistant_as_its_stand_in(
    entry: MockConfigEntry, tunnel_port: int
) -> None:
    seen = await seen_as(tunnel_port, IPV6_LOOPBACK)
    print(f"::1 is seen as {seen}")
    assert seen == visitor_address(IPV6_LOOPBACK)
    assert ip_address(seen) in STAND_IN_NETWORK
    assert list(tunnel_of(entry).visitors.recent_originators) == [IPV6_LOOPBACK]


@pytest.mark.parametrize(
    "tunnel_port",
    [{"max_connections": 20, "max_connections_per_visitor": PER_VISITOR}],
    indirect=True,
)
async def test_the_per_visitor_cap_applies_to_an_ipv6_visitor(
    entry: MockConfigEntry, tunnel_port: int
) -> None:
    stats = tunnel_of(entry).stats
    held = []
    for count in range(1, PER_VISITOR + 1):
        _reader, writer = await connect_over_ipv6(tunnel_port)
        writer.write(REQUEST[:20])  # a request under way
        held.append(writer)
        await wait_until(lambda n=count: stats.active_connections == n, 5, "held")  # type: ignore[misc]
    assert await seen_as(tunnel_port, IPV6_LOOPBACK) is None
    assert stats.connections_refused == 1
    # Another visitor (over IPv4) still comes in.
    assert await seen_as(tunnel_port, "127.0.0.3") == visitor_address("127.0.0.3")
    for writer in held:
        writer.close()
    await wait_until(lambda: stats.active_connections == 0, 5, "all closed")


@pytest.mark.parametrize(
    ("tunnel_port", "ipv6_in", "ipv4_in"),
    [
        ({"allowed_networks": "::1/128"}, True, False),
        ({"allowed_networks": "127.0.0.0/8"}, False, True),
        ({"refused_networks": "::/0"}, False, True),
        ({"allowed_networks": "::1\n127.0.0.0/8", "refused_networks": "::1"}, False, True),
    ],
    indirect=["tunnel_port"],
)
async def test_the_networks_allowed_and_refused_apply_to_an_ipv6_visitor(
    entry: MockConfigEntry, tunnel_port: int, ipv6_in: bool, ipv4_in: bool
) -> None:
    ipv6_seen = await seen_as(tunnel_port, IPV6_LOOPBACK)
    ipv4_seen = await seen_as(tunnel_port, "127.0.0.2")
    assert (ipv6_seen is not None, ipv4_seen is not None) == (ipv6_in, ipv4_in)
    refused = [refusal.address for refusal in tunnel_of(entry).visitors.refusals]
    assert refused == ([] if ipv6_in else [IPV6_LOOPBACK]) + ([] if ipv4_in else ["127.0.0.2"])
    assert LOOPBACK not in refused  # the public-path check was not refused
