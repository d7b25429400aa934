"""Logbook lines for the tunnel's state changes and self-healing, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_SELF_HEALED, EVENT_STATE_CHANGED
from .engine import PUBLIC_URL_FAILURE_PREFIX, ProbeResult, Reason

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

# Why a check failed, as the self-healing event carries it.
CHECK_WORDS: dict[str, str] = {
    ProbeResult.UNREACHABLE: "nothing answered on the server's port",
    ProbeResult.WRONG_ANSWER: "something other than this Home Assistant answered",
}


def _check_words(failure: str | None) -> str:
    """The words for a failed check as the self-healing event carries it."""
    if failure is not None and failure.startswith(PUBLIC_URL_FAILURE_PREFIX):
        return f"the public URL failed ({failure.removeprefix(PUBLIC_URL_FAILURE_PREFIX)})"
    return CHECK_WORDS.get(str(failure), "it failed")


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
    """Describe ssh_callhome_state_changed and ssh_callhome_self_healed."""

    def name(event: Event) -> str:
        entry = hass.config_entries.async_get_entry(event.data["entry_id"])
        return entry.title if entry else "SSH Call Home"

    @callback
    def describe(event: Event) -> dict[str, Any]:
        if event.data["new_status"] == "connected":
            message = "tunnel connected"
        else:
            reason = _reason_words(event.data["reason"])
            message = f"tunnel disconnected because {reason}"
        return {LOGBOOK_ENTRY_NAME: name(event), LOGBOOK_ENTRY_MESSAGE: message}

    @callback
    def describe_self_heal(event: Event) -> dict[str, Any]:
        reason = _check_words(event.data["reason"])
        message = f"tunnel reconnected by itself: its check kept failing because {reason}"
        return {LOGBOOK_ENTRY_NAME: name(event), LOGBOOK_ENTRY_MESSAGE: message}

    async_describe_event(DOMAIN, EVENT_STATE_CHANGED, describe)
    async_describe_event(DOMAIN, EVENT_SELF_HEALED, describe_self_heal)
