"""Who may come in, and what a flood of visitors may cost: caps, overall and per visitor.

Every forwarded channel (the main forward in either delivery mode, and each extra forward) asks
the one gate of its tunnel before it is opened. A visitor the policy refuses (visitors.py) is
refused with OPEN_ADMINISTRATIVELY_PROHIBITED before the caps are asked, so it takes no place.
Beyond a cap the channel is refused with OPEN_RESOURCE_SHORTAGE. Either way the SSH server
closes that visitor's connection before any byte reaches the target; the tunnel stays. Each
open channel can make Home Assistant buffer at most one SSH window (listening.py), so the total
cap times the window bounds what visitors can make it hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh

from .channels import TrafficStats
from .server_text import printable
from .visitors import VisitorPolicy, VisitorRecord

_LOGGER = logging.getLogger(__name__)

# A household's browsers and apps hold a few dozen connections at most (six per browser and a
# websocket). 100 channels of one 256 KiB window each (listening.py) hold 25 MiB at worst; with
# what the targets buffer, about 63 MiB of Home Assistant's memory, measured (README).
DEFAULT_MAX_CONNECTIONS = 100
# One browser, or a few devices behind one NAT address.
DEFAULT_MAX_CONNECTIONS_PER_VISITOR = 20
# Every client sends its request (or, over TCP, its first bytes) at once: 30 s is generous
# for a slow mobile link and short for a visitor that holds connections open by saying nothing.
FIRST_REQUEST_TIMEOUT = 30.0
# A TCP target that takes none of a visitor's bytes for this long has stopped reading: long
# enough for a service that is busy for a while, short enough to free a stuck channel's place.
STALL_TIMEOUT = 120.0
# Refusals closer together than this belong to one burst, which is logged once.
QUIET_BEFORE_NEXT_WARNING = 60.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Who may come in, the caps, how long a connection may stay silent or a target stalled."""

    total: int = DEFAULT_MAX_CONNECTIONS
    per_visitor: int = DEFAULT_MAX_CONNECTIONS_PER_VISITOR
    first_request_timeout: float = FIRST_REQUEST_TIMEOUT
    stall_timeout: float = STALL_TIMEOUT
    visitors: VisitorPolicy = field(default_factory=VisitorPolicy)


class VisitorCounts:
    """How many connections each visitor holds, and all of them together.

    A visitor is the originator address the SSH server reports. Addresses holding nothing are
    forgotten, so the table is never larger than the connections open.
    """

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self.total = 0

    def held_by(self, visitor: str) -> int:
        """The connections `visitor` holds now."""
        return self._held.get(visitor, 0)

    def add(self, visitor: str) -> None:
        """One more connection of `visitor`."""
        self._held[visitor] = self.held_by(visitor) + 1
        self.total += 1

    def remove(self, visitor: str) -> None:
        """One connection of `visitor` fewer."""
        left = self._held[visitor] - 1
        if left:
            self._held[visitor] = left
        else:
            del self._held[visitor]
        self.total -= 1


class Admission:
    """One admitted connection; released exactly once, however often release() is called."""

    __slots__ = ("_gate", "_released", "visitor")

    def __init__(self, gate: ChannelGate, visitor: str) -> None:
        self._gate = gate
        self._released = False
        self.visitor = visitor

    def release(self) -> None:
        """The connection is gone: its place is free again."""
        if not self._released:
            self._released = True
            self._gate.released(self.visitor)


class ChannelGate:
    """Admits visitors the policy lets in, within the caps; counts open ones and refusals."""

    def __init__(
        self,
        limits: ConnectionLimits,
        stats: TrafficStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.stats = stats
        self._counts = VisitorCounts()
        self._clock = clock
        self._last_refusal: float | None = None
        self.visitors = VisitorRecord(clock)

    def admit(self, visitor: str) -> Admission:
        """A place for one more connection of `visitor`, or ChannelOpenError (refused, full).

        The tunnel's own check has a place beyond the caps while it runs (visitors.py): with
        every place taken it would be refused like a visitor, and the tunnel reconnected.
        """
        visitor = printable(visitor)  # the server chose it: logged, counted and told made safe
        own_check = self.visitors.arrived(visitor)
        rule = self.limits.visitors.refusal(visitor)
        if rule is not None:
            self.stats.visitors_refused += 1
            self.visitors.refused(visitor, rule)
            _LOGGER.debug("Refused a visitor from %s: %s", visitor, rule)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "visitor not allowed"
            )
        # One place beyond the total, for the check alone: taken, the check meets the caps too.
        if not own_check or self._counts.total > self.limits.total:
            self._within_caps(visitor)
        self._counts.add(visitor)
        self.stats.active_connections = self._counts.total
        return Admission(self, visitor)

    def _within_caps(self, visitor: str) -> None:
        """Nothing if `visitor` may have one more place; else refused (ChannelOpenError)."""
        if self._counts.total >= self.limits.total:
            self._refuse(visitor, f"{self._counts.total} connections open (the cap)")
        if self._counts.held_by(visitor) >= self.limits.per_visitor:
            self._refuse(visitor, f"{visitor} holds {self.limits.per_visitor} (the cap)")

    def released(self, visitor: str) -> None:
        """Called by Admission.release only."""
        self._counts.remove(visitor)
        self.stats.active_connections = self._counts.total

    def _refuse(self, visitor: str, why: str) -> None:
        self.stats.connections_refused += 1
        now = self._clock()
        burst_starts = (
            self._last_refusal is None or now - self._last_refusal >= QUIET_BEFORE_NEXT_WARNING
        )
        self._last_refusal = now
        if burst_starts:
            _LOGGER.warning(
                "Refusing tunnelled connections: %s. Further refusals are counted, and "
                "logged again once a minute has passed without any",
                why,
            )
        else:
            _LOGGER.debug("Refused a tunnelled connection from %s: %s", visitor, why)
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, "too many connections")
