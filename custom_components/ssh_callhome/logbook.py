"""Logbook lines for the tunnel's state changes, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_STATE_CHANGED

REASON_WORDS = {
    "dns": "the server's name could not be resolved",
    "refused": "the server refused the connection",
    "timeout": "the server did not answer in time",
    "auth": "the server rejected the key",
    "host_key": "the server presented a different host key",
    "forward_refused": "the server refused to listen on the remote port",
    "connection_lost": "the connection was lost",
    "unknown": "of an unexpected error",
}


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe ssh_callhome_state_changed."""

    @callback
    def describe(event: Event) -> dict[str, Any]:
        entry = hass.config_entries.async_get_entry(event.data["entry_id"])
        name = entry.title if entry else "SSH Call Home"
        if event.data["new_status"] == "connected":
            message = "tunnel connected"
        else:
            reason = REASON_WORDS.get(event.data["reason"] or "", "it was closed")
            message = f"tunnel disconnected because {reason}"
        return {LOGBOOK_ENTRY_NAME: name, LOGBOOK_ENTRY_MESSAGE: message}

    async_describe_event(DOMAIN, EVENT_STATE_CHANGED, describe)
