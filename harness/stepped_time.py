"""Time that moves only when a test says so: a clock and the call_later that goes with it."""

from __future__ import annotations

from collections.abc import Callable


class SteppedCall:
    """A callback due at a time of the stepped clock."""

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SteppedTime:
    """`clock()` reads it, `call_later` schedules on it, `advance` moves it and runs what is due."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._due: list[SteppedCall] = []

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> SteppedCall:
        call = SteppedCall(self.now + delay, callback)
        self._due.append(call)
        return call

    def advance(self, seconds: float) -> None:
        """Move on by `seconds`, running each callback that falls due meanwhile, in order."""
        self.now += seconds
        due = sorted((c for c in self._due if c.when <= self.now), key=lambda c: c.when)
        self._due = [c for c in self._due if c.when > self.now]
        for call in due:
            if not call.cancelled:
                call.callback()

    @property
    def pending(self) -> int:
        """Callbacks scheduled and neither run nor cancelled."""
        return sum(not call.cancelled for call in self._due)
