"""The reconnect and restart actions, registered once in async_setup."""

from __future__ import annotations

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .const import ATTR_CONFIG_ENTRY_ID, DOMAIN, SERVICE_RECONNECT, SERVICE_RESTART
from .runtime_data import SshCallhomeConfigEntry

SERVICE_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


def _loaded_entry(call: ServiceCall) -> SshCallhomeConfigEntry:
    """The entry the call names, or a translated error saying why it cannot be used."""
    entry_id: str = call.data[ATTR_CONFIG_ENTRY_ID]
    entry = call.hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


async def _async_reconnect(call: ServiceCall) -> None:
    """Drop the SSH connection and connect again at once."""
    _loaded_entry(call).runtime_data.tunnel.request_reconnect()


async def _async_restart(call: ServiceCall) -> None:
    """Stop the engine and start it again from the entry's current settings."""
    entry = _loaded_entry(call)
    await call.hass.config_entries.async_reload(entry.entry_id)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(DOMAIN, SERVICE_RECONNECT, _async_reconnect, SERVICE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_RESTART, _async_restart, SERVICE_SCHEMA)
