"""The integration inside Home Assistant: setup, the Tunnel sensor, actions, reauth, unload."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    DOMAIN,
)
from harness.integration import TUNNEL, load, state_of
from harness.network import LOOPBACK, port_accepts, wait_for_port, wait_until
from harness.openssh import OpenSSHServer


async def test_home_assistant_answers_through_the_tunnel(
    hass: HomeAssistant, entry: MockConfigEntry, hass_access_token: str
) -> None:
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    url = f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}/api/"
    headers = {"Authorization": f"Bearer {hass_access_token}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        assert reply.status == 200
        assert await reply.json() == {"message": "API running."}


async def test_device_and_entity(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    await load(hass, entry)
    entity = entity_registry.async_get(TUNNEL)
    assert entity is not None
    assert entity.unique_id == f"{entry.entry_id}_tunnel"
    assert entity.original_device_class == "connectivity"
    assert entity.translation_key == "tunnel"
    device = device_registry.async_get(entity.device_id or "")
    assert device is not None
    assert device.name == f"root@{LOOPBACK}"
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    state = hass.states.get(TUNNEL)
    assert state is not None
    assert state.attributes["friendly_name"] == f"root@{LOOPBACK} Tunnel"


async def test_sensor_follows_the_server_down_and_back(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    openssh.stop()
    await wait_until(lambda: state_of(hass) == STATE_OFF, 3, "tunnel off")
    openssh.start()
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on again")
    assert entry.runtime_data.tunnel.state.reconnects == 1


async def test_entry_loads_while_the_server_is_down(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    openssh.stop()
    await load(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert state_of(hass) == STATE_OFF
    openssh.start()
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on once the server is up")


async def test_unload_stops_the_tunnel(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    assert await port_accepts(entry.data[CONF_REMOTE_PORT])
    tunnel = entry.runtime_data.tunnel
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass) == STATE_UNAVAILABLE
    assert not tunnel.state.running
    await wait_for_port(entry.data[CONF_REMOTE_PORT], accepting=False, timeout=2)


async def test_rejected_key_asks_for_reauth(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    openssh.set_authorized_keys([])
    await load(hass, entry)
    await wait_until(
        lambda: any(entry.async_get_active_flows(hass, {SOURCE_REAUTH})), 10, "reauth flow"
    )
    assert state_of(hass) == STATE_OFF
    assert entry.runtime_data.tunnel.state.last_error == "auth"


async def test_unreadable_stored_key_asks_for_reauth(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_PRIVATE_KEY: "junk"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert any(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))


async def test_reconnect_action(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    tunnel = entry.runtime_data.tunnel
    await hass.services.async_call(
        DOMAIN, "reconnect", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await wait_until(lambda: tunnel.state.reconnects == 1, 5, "reconnected")
    assert state_of(hass) == STATE_ON
    assert tunnel.state.last_error is None


async def test_restart_action(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    first_engine = entry.runtime_data.tunnel
    await hass.services.async_call(
        DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert entry.runtime_data.tunnel is not first_engine
    assert not first_engine.state.running
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on after restart")


@pytest.mark.parametrize("action", ["reconnect", "restart"])
async def test_actions_refuse_unknown_and_unloaded_entries(
    hass: HomeAssistant, entry: MockConfigEntry, action: str
) -> None:
    await load(hass, entry)
    with pytest.raises(ServiceValidationError) as unknown:
        await hass.services.async_call(DOMAIN, action, {"config_entry_id": "nope"}, blocking=True)
    assert unknown.value.translation_key == "entry_not_found"
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as unloaded:
        await hass.services.async_call(
            DOMAIN, action, {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert unloaded.value.translation_key == "entry_not_loaded"


@pytest.mark.parametrize(
    ("configured", "expected"), [(logging.NOTSET, logging.WARNING), (logging.INFO, logging.INFO)]
)
async def test_asyncssh_channel_chatter_is_quieted_unless_configured(
    hass: HomeAssistant, configured: int, expected: int
) -> None:
    logging.getLogger("asyncssh").setLevel(configured)
    assert await async_setup_component(hass, DOMAIN, {})
    assert logging.getLogger("asyncssh").level == expected
