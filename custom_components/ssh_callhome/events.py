"""The ssh_callhome_state_changed event.

Fired when the tunnel goes up or down, or the reason it is down changes; retries that change
nothing are not events.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback

from .const import EVENT_STATE_CHANGED
from .state import Reason, Status, TunnelState


def _summary(state: TunnelState) -> tuple[Status, Reason | None]:
    if state.status is Status.CONNECTED:
        return Status.CONNECTED, None
    return Status.DISCONNECTED, state.last_error


class StateChangeEvents:
    """Compares each state with the last one reported and fires the event on a difference."""

    def __init__(self, hass: HomeAssistant, entry_id: str, initial: TunnelState) -> None:
        self._hass = hass
        self._entry_id = entry_id
        self._reported = _summary(initial)

    @callback
    def __call__(self, state: TunnelState) -> None:
        """A listener of the engine."""
        summary = _summary(state)
        if summary == self._reported:
            return
        (old_status, _), (new_status, reason) = self._reported, summary
        self._reported = summary
        self._hass.bus.async_fire(
            EVENT_STATE_CHANGED,
            {
                "entry_id": self._entry_id,
                "old_status": old_status.value,
                "new_status": new_status.value,
                "reason": reason.value if reason else None,
            },
        )
