"""Self-healing: a check that keeps failing while connected makes the tunnel reconnect.

No Home Assistant here: the engine asks after each check what to do, and this decides it from
the run of failures on the current connection and the time of the last such reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

# A reconnect cannot fix everything (a wrong DNS record, a firewall): at most one this often.
DEFAULT_MIN_GAP = 15 * 60.0


@dataclass(frozen=True, slots=True)
class SelfHealPolicy:
    """When a failing check makes the tunnel reconnect."""

    # Failed checks in a row on one connection that make it reconnect; 0 turns healing off.
    after_failures: int = 3
    # Seconds at least between two such reconnects.
    min_gap: float = DEFAULT_MIN_GAP
    # Where time comes from (seconds, never going back): tests step it by hand.
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


class Verdict(Enum):
    """What the engine does after a check."""

    CARRY_ON = auto()
    RECONNECT = auto()
    # The check keeps failing, but the last reconnect was too recent for another.
    HELD_BACK = auto()


class SelfHealing:
    """Counts one connection's failed checks in a row; remembers the last reconnect across them."""

    def __init__(self, policy: SelfHealPolicy) -> None:
        self._policy = policy
        self._failures = 0
        self._last_reconnect: float | None = None

    def new_connection(self) -> None:
        """A connection starts: its checks count from zero."""
        self._failures = 0

    def after_check(self, failed: bool) -> Verdict:
        """The verdict after a check that failed, or did not (passed, or gave no verdict)."""
        self._failures = self._failures + 1 if failed else 0
        after = self._policy.after_failures
        if after == 0 or self._failures < after:
            return Verdict.CARRY_ON
        now = self._policy.clock()
        if self._last_reconnect is not None and now - self._last_reconnect < self._policy.min_gap:
            return Verdict.HELD_BACK
        self._last_reconnect = now
        return Verdict.RECONNECT
