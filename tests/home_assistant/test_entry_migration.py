"""Entries made before every option was stored get the defaults once, through migration."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_ALLOWED_NETWORKS,
    CONF_BIND,
    CONF_EXPOSE,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_URL,
    CONF_PUBLIC_URL,
    CONF_REFUSED_NETWORKS,
    CONF_SELF_HEAL_AFTER,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
)


async def test_an_older_entry_gets_the_missing_options_and_keeps_its_own(
    hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any]
) -> None:
    # As 1.1 stored it: only the options the user changed.
    entry = MockConfigEntry(
        domain=DOMAIN, data=entry_data, options={CONF_BIND: "loopback"}, minor_version=1
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == ENTRY_MINOR_VERSION
    assert entry.options == {**DEFAULT_OPTIONS, CONF_BIND: "loopback"}
    assert entry.runtime_data.tunnel.settings.bind_address == "127.0.0.1"
    assert await hass.config_entries.async_unload(entry.entry_id)


# The options 1.2 stored; 1.3 added the visitor lists, exposure, public URL and self-healing.
OPTIONS_ADDED_IN_1_3 = (
    CONF_ALLOWED_NETWORKS,
    CONF_REFUSED_NETWORKS,
    CONF_EXPOSE,
    CONF_PUBLIC_URL,
    CONF_SELF_HEAL_AFTER,
    CONF_HEARTBEAT_URL,
    CONF_HEARTBEAT_INTERVAL,
)


async def test_an_entry_of_1_2_gets_the_options_added_since(
    hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any]
) -> None:
    stored = {
        name: value
        for name, value in {**DEFAULT_OPTIONS, CONF_BIND: "loopback"}.items()
        if name not in OPTIONS_ADDED_IN_1_3
    }
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, options=stored, minor_version=2)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == ENTRY_MINOR_VERSION
    assert entry.options == {**DEFAULT_OPTIONS, CONF_BIND: "loopback"}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_entry_of_a_newer_release_is_left_alone(
    hass: HomeAssistant, entry_data: dict[str, Any]
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, options={}, version=2)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.options == {}
