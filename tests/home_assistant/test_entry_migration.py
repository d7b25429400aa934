"""Entries of older releases are brought up to date once, through migration.

The defaults of options added since; TCP mode to Home Assistant's own web server becomes
delivery to Home Assistant.
"""

from __future__ import annotations

from typing import Any

import pytest

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_ALLOWED_NETWORKS,
    CONF_BIND,
    CONF_EXPOSE,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_URL,
    CONF_MODE,
    CONF_PUBLIC_URL,
    CONF_REFUSED_NETWORKS,
    CONF_SELF_HEAL_AFTER,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
    MODE_TCP,
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


# TCP mode to Home Assistant's own web server, as 1.3 stored it: no target, or one of its names.
@pytest.mark.parametrize("target_host", ["", "localhost", "127.0.0.1", "0.0.0.0"])
async def test_tcp_mode_to_home_assistant_is_stored_as_delivery_to_home_assistant(
    hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any], target_host: str
) -> None:
    tcp = {CONF_MODE: MODE_TCP, CONF_TARGET_HOST: target_host, CONF_TARGET_PORT: ha_http_port}
    entry = MockConfigEntry(
        domain=DOMAIN, data=entry_data, options={**DEFAULT_OPTIONS, **tcp}, minor_version=3
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.minor_version == ENTRY_MINOR_VERSION
    assert entry.options == DEFAULT_OPTIONS
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_tcp_mode_to_another_service_is_kept(
    hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any]
) -> None:
    """The same machine on another port, and another machine on Home Assistant's port."""
    for host, port in (("127.0.0.1", ha_http_port + 1), ("198.51.100.7", ha_http_port)):
        tcp = {
            **DEFAULT_OPTIONS,
            CONF_MODE: MODE_TCP,
            CONF_TARGET_HOST: host,
            CONF_TARGET_PORT: port,
        }
        entry = MockConfigEntry(domain=DOMAIN, data=entry_data, options=tcp, minor_version=3)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.minor_version == ENTRY_MINOR_VERSION
        assert entry.options == tcp
        assert await hass.config_entries.async_unload(entry.entry_id)
