"""Extra forwards on the tunnel's connection: parsing, options, and each one's own state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from unittest.mock import patch

import aiohttp
import asyncssh
import pytest

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import DEFAULT_OPTIONS
from custom_components.ssh_callhome.engine.extras import (
    ExtraForward,
    InvalidExtraForward,
    parse_extra_forwards,
)
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from harness.engine import PAGE
from harness.flows import VALID_OPTIONS
from harness.integration import TUNNEL, load, state_of
from harness.network import LOOPBACK, free_port, wait_until
from harness.openssh import OpenSSHServer


def test_parsing() -> None:
    text = "2222:127.0.0.1:22\n\n 1883:mqtt.local:1883 \n8443:[::1]:443"
    assert parse_extra_forwards(text) == (
        ExtraForward(2222, "127.0.0.1", 22),
        ExtraForward(1883, "mqtt.local", 1883),
        ExtraForward(8443, "::1", 443),
    )
    assert parse_extra_forwards("") == ()


def test_proxy_v2_after_a_forward() -> None:
    text = "8883:127.0.0.1:8883 proxy-v2\n8443:[::1]:443\tproxy-v2\n2222:127.0.0.1:22"
    assert parse_extra_forwards(text) == (
        ExtraForward(8883, "127.0.0.1", 8883, proxy_v2=True),
        ExtraForward(8443, "::1", 443, proxy_v2=True),
        ExtraForward(2222, "127.0.0.1", 22, proxy_v2=False),
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("2222:h:22 proxy", "2222:h:22 proxy"),
        ("2222:h:22 PROXY-V2", "2222:h:22 PROXY-V2"),
        ("2222:h:22 proxy-v2 proxy-v2", "2222:h:22 proxy-v2 proxy-v2"),
        ("2222:h:22:proxy-v2", "2222:h:22:proxy-v2"),
        ("proxy-v2", "proxy-v2"),
        ("1:a:2\n  3:b  \n4:c:5", "3:b"),
        ("1:a:2 proxy-v2\n 1:b:3 ", "1:b:3"),
    ],
)
def test_the_error_names_the_bad_line(text: str, named: str) -> None:
    with pytest.raises(InvalidExtraForward) as refused:
        parse_extra_forwards(text)
    assert refused.value.line == named


@pytest.mark.parametrize(
    "text",
    [
        "2222",
        "2222:host",
        "x:host:22",
        "2222:host:x",
        "0:host:22",
        "2222:host:70000",
        ":h:1",
        "2222::22",
        "1:a:2\n1:b:3",
    ],
)
def test_bad_lines_are_refused(text: str) -> None:
    with pytest.raises(InvalidExtraForward):
        parse_extra_forwards(text)


async def test_options_refuse_a_bad_line(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    bad = await hass.config_entries.options.async_configure(
        form["flow_id"],
        {**VALID_OPTIONS, "extra_forwards": "1883:127.0.0.1:1883\n22 to the add-on"},
    )
    assert bad["errors"] == {"extra_forwards": "invalid_extra_forwards"}
    assert bad["description_placeholders"] == {"bad_forward": "22 to the add-on"}
    assert entry.options == DEFAULT_OPTIONS
    good = "1883:127.0.0.1:1883 proxy-v2\n2222:127.0.0.1:22"
    new_line = await hass.config_entries.options.async_configure(
        form["flow_id"], {**VALID_OPTIONS, "extra_forwards": good}
    )
    assert new_line["step_id"] == "authorize_forwards"
    await hass.config_entries.options.async_configure(form["flow_id"], {})
    await hass.async_block_till_done()
    assert entry.options["extra_forwards"] == good
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def quick_watch() -> Iterator[None]:
    """Refused extra forwards are retried at each watch, every 30 s; here every 0.2 s."""
    with patch("custom_components.ssh_callhome.engine.tunnel.WATCH_INTERVAL", 0.2):
        yield


async def test_each_extra_forward_carries_traffic_and_shows_its_state(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
    http_backend: int,
    quick_watch: None,
) -> None:
    free, taken = free_port(), free_port()
    forwards = f"{free}:{LOOPBACK}:{http_backend}\n{taken}:{LOOPBACK}:{http_backend}"
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "extra_forwards": forwards}
    )
    async with openssh.holding_remote_port(client_key, taken):
        await load(hass, entry)
        await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
        sensor = f"binary_sensor.root_127_0_0_1_forward_{free}"
        blocked = f"binary_sensor.root_127_0_0_1_forward_{taken}"
        await wait_until(lambda: state_of(hass, sensor) == STATE_ON, 10, "extra up")
        assert state_of(hass, blocked) == STATE_OFF
        async with aiohttp.ClientSession() as session:
            reply = await session.get(f"http://{LOOPBACK}:{free}/")
            assert await reply.read() == PAGE
    # The other session is gone: the refused forward is taken at the next retry.
    await wait_until(lambda: state_of(hass, blocked) == STATE_ON, 10, "retried")
    name = hass.states.get(blocked).attributes["friendly_name"]  # type: ignore[union-attr]
    assert name == f"root@127.0.0.1 Forward {taken}"


@pytest.mark.parametrize("line_replaced", [True, False])
async def test_a_new_forward_shows_the_line_that_lets_it_through(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
    http_backend: int,
    quick_watch: None,
    line_replaced: bool,
) -> None:
    remote_port = entry.data["remote_port"]
    old_line = authorized_keys_line(client_key, "", [remote_port], "ssh_callhome@test_home")
    openssh.set_authorized_keys([old_line])
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")

    extra = free_port()
    form = await hass.config_entries.options.async_init(entry.entry_id)
    shown = await hass.config_entries.options.async_configure(
        form["flow_id"],
        {**VALID_OPTIONS, "bind": "all", "extra_forwards": f"{extra}:{LOOPBACK}:22"},
    )
    assert shown["step_id"] == "authorize_forwards"
    assert entry.options == DEFAULT_OPTIONS  # saved only once the user has seen the line
    placeholders = shown["description_placeholders"] or {}
    new_line = placeholders["line"]
    assert f'permitlisten="{remote_port}",permitlisten="{extra}",' in new_line
    assert f"    PermitListen {remote_port} {extra}\n" in placeholders["settings"]
    assert f"\nKEY_LINE='{new_line}'\n" in placeholders["script"]
    assert f"\nMATCH_BLOCK='{placeholders['settings']}'\n" in placeholders["script"]

    if line_replaced:
        openssh.set_authorized_keys([new_line])
    await hass.config_entries.options.async_configure(shown["flow_id"], {})
    await hass.async_block_till_done()
    assert entry.options["extra_forwards"] == f"{extra}:{LOOPBACK}:22"
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on again")
    sensor = f"binary_sensor.root_127_0_0_1_forward_{extra}"
    if line_replaced:
        await wait_until(lambda: state_of(hass, sensor) == STATE_ON, 10, "extra forward up")
    else:
        # Several watches (every 0.2 s here) ask again; the old line refuses each time.
        await asyncio.sleep(1.5)
        assert state_of(hass, sensor) == STATE_OFF
        denied = f"to remote forward to host  port {extra}, but the request was denied"
        assert denied in openssh.log


async def test_a_forward_the_line_already_names_saves_at_once(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    # Loopback only: the line's bare-port permitlisten already allows that address.
    saved = await hass.config_entries.options.async_configure(
        form["flow_id"], {**VALID_OPTIONS, "bind": "loopback"}
    )
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_a_removed_extra_forward_leaves_the_entity_registry(
    hass: HomeAssistant, entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    kept, removed = free_port(), free_port()
    forwards = f"{kept}:{LOOPBACK}:22\n{removed}:{LOOPBACK}:22"
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, **VALID_OPTIONS, "extra_forwards": forwards}
    )
    await load(hass, entry)
    kept_id = f"binary_sensor.root_127_0_0_1_forward_{kept}"
    removed_id = f"binary_sensor.root_127_0_0_1_forward_{removed}"
    assert entity_registry.async_get(kept_id) is not None
    assert entity_registry.async_get(removed_id) is not None

    form = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(
        form["flow_id"], {**VALID_OPTIONS, "extra_forwards": f"{kept}:{LOOPBACK}:22"}
    )
    await hass.async_block_till_done()  # saving the options reloads the entry
    assert entity_registry.async_get(removed_id) is None
    assert hass.states.get(removed_id) is None
    assert entity_registry.async_get(kept_id) is not None
    assert entity_registry.async_get(TUNNEL) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
