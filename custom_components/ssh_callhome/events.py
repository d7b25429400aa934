"""The ssh_callhome_state_changed, ssh_callhome_self_healed and ssh_callhome_visitor_refused events.

The first is fired when the tunnel goes up or down, or the reason it is down changes; retries
that change nothing are not events. The second when the tunnel reconnected by itself because
its check kept failing. The third when a visitor is refused by the networks allowed and
refused, within the engine's bounds (visitors.py): once a minute per visitor, at most ten
visitors a minute, and beyond that one summary at the minute's end.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback

from .const import EVENT_SELF_HEALED, EVENT_STATE_CHANGED, EVENT_VISITOR_REFUSED
from .engine import Reason, RefusalNotice, Status, TunnelState


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


class SelfHealEvents:
    """Fires the event for each reconnect that self-healing made, with the failure behind it."""

    def __init__(self, hass: HomeAssistant, entry_id: str, initial: TunnelState) -> None:
        self._hass = hass
        self._entry_id = entry_id
        self._reported = initial.self_heals

    @callback
    def __call__(self, state: TunnelState) -> None:
        """A listener of the engine."""
        if state.self_heals == self._reported:
            return
        self._reported = state.self_heals
        self._hass.bus.async_fire(
            EVENT_SELF_HEALED, {"entry_id": self._entry_id, "reason": state.self_heal_reason}
        )


class VisitorRefusedEvents:
    """Fires the event for each notice of refused visitors the engine gives.

    One visitor: `address` as the server reported it (made safe to show at the gate). A summary:
    `address` None and `not_announced`, the refused connections that had no event of their own.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._hass = hass
        self._entry_id = entry_id

    @callback
    def __call__(self, notice: RefusalNotice) -> None:
        """A refusal listener of the engine."""
        data: dict[str, str | int | None] = {"entry_id": self._entry_id, "address": notice.address}
        if notice.address is None:
            data["not_announced"] = notice.not_announced
        self._hass.bus.async_fire(EVENT_VISITOR_REFUSED, data)
