"""Logbook lines for the tunnel's state changes, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_STATE_CHANGED
from .state import Reason

REASON_WORDS: dict[Reason, str] = {
    Reason.DNS: "the server's name could not be resolved",
    Reason.REFUSED: "the server refused the connection",
    Reason.TIMEOUT: "the server did not answer in time",
    Reason.AUTH: "the server rejected the key",
    Reason.HOST_KEY: "the server presented a different host key",
    Reason.FORWARD_REFUSED: "the server refused to listen on the remote port",
    Reason.CONNECTION_LOST: "the connection was lost",
    Reason.UNKNOWN: "of an unexpected error",
}


def _reason_words(reason: str | None) -> str:
    """The words for a reason as the event carries it (its value), or for none."""
    if reason is not None and reason in Reason:
        return REASON_WORDS[Reason(reason)]
    return "it was closed"


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
            reason = _reason_words(event.data["reason"])
            message = f"tunnel disconnected because {reason}"
        return {LOGBOOK_ENTRY_NAME: name, LOGBOOK_ENTRY_MESSAGE: message}

    async_describe_event(DOMAIN, EVENT_STATE_CHANGED, describe)
