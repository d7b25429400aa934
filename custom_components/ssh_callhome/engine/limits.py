"""Who may come in, and what a flood of visitors may cost: caps, overall and per visitor.

Every forwarded channel (the main forward in either delivery mode, and each extra forward) asks
the one gate of its tunnel before it is opened. A visitor the policy refuses (visitors.py) is
refused with OPEN_ADMINISTRATIVELY_PROHIBITED before the caps are asked, so it takes no place.
Beyond a cap the channel is refused with OPEN_RESOURCE_SHORTAGE. Either way the SSH server
closes that visitor's connection before any byte reaches the target; the tunnel stays. When the
total is full, a newcomer may instead take the place of another visitor's connection that waits
for a request or whose request has stalled, so that a few addresses cannot lock everybody
else out (ChannelGate.admit). Extra forwards together hold at most half the total, so that
Home Assistant's own forward always keeps places for fair places to share. Each
open channel can make Home Assistant buffer at most one SSH window (listening.py), so the total
cap times the window bounds what visitors can make it hold. A channel closed on our side gives
its place up at once but keeps counting against its visitor until the SSH server has closed it
too, which waits for the visitor to read what the server holds for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import asyncssh

from .channels import TrafficStats
from .server_text import printable
from .visitors import VisitorPolicy, VisitorRecord, visitor_network_of, visitor_of

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
# In process, a request under way that made no progress for this long has stalled (no body
# byte reached it and no answer byte went out: a body that never comes, a chunk extension without
# end, a response nobody reads): twice nginx's 60 s (client_body_timeout,
# send_timeout, proxy_read_timeout), so that what works behind a default nginx works here.
STALL_TIMEOUT = 120.0
# Refusals closer together than this belong to one burst, which is logged once.
QUIET_BEFORE_NEXT_WARNING = 60.0
# A request's head (request line and header lines) in bytes: room for one of Home Assistant's
# longest lines (MAX_LINE_SIZE, 24,570) and 8 KiB more, about what nginx's default buffers hold
# in all (1 KiB + 4 x 8 KiB). aiohttp 3.13.3 bounds each line but not their number.
REQUEST_HEAD_BYTES = 32 * 1024
# And in lines: a request line, 128 header lines (what aiohttp upstream now allows) and the
# blank line. Each line costs aiohttp some hundred bytes of objects, however short: a bound in
# bytes alone would let 4,096 short lines cost Home Assistant 1 MiB per connection.
REQUEST_HEAD_LINES = 130
# How long a kept-alive connection may wait for its next request: nginx's default
# (keepalive_timeout 75 s) and aiohttp's run_app's, instead of 3,630 s. Browsers open a new
# connection when theirs was closed; a request, a response or a websocket under way is never cut.
IDLE_BETWEEN_REQUESTS = 75.0
# When every place is taken, a request under way with no byte moving for this long may give
# its place to a newcomer, as an idle connection does: a browser's request moves bytes every
# few seconds, and a fresh visitor is served about this soon after a flood of stalled requests.
STALLED_AFTER = 10.0
# A request body under way that brings fewer bytes a second than this (over STALLED_AFTER) counts
# as stalled for that too: Apache's default for bodies (mod_reqtimeout MinRate=500). A mobile
# upload on a poor link moves tens of KiB a second; a body trickled a byte at a time, which
# never goes quiet, would otherwise hold its place for as long as the visitor likes.
MIN_BODY_RATE = 500
# Channels closed on our side that the SSH server has not closed yet (it first writes out what
# it holds for the visitor, 2 MiB and more, which a visitor that reads nothing never lets it):
# at most this many per place of the total. Their places serve others meanwhile (eviction and
# the stall bound free a place at once), while the SSH server's memory stays bounded: at most
# twice the total of channels there, and no visitor beyond its own cap.
CLOSING_PER_PLACE = 1
# The share of the total that extra forwards may hold together. Their connections are never
# evicted (whether one is idle cannot be told) and after their first byte have no timer, so
# without a share a few addresses holding silent ones took every place and Home Assistant's own
# forward refused everybody for good. The rest stays for the main forward, where fair places
# give an idle connection's place to a newcomer. Half: with the default total, 50 MQTT clients
# or SSH sessions at once, and for Home Assistant 50, more than twice what one browser may hold.
EXTRA_FORWARDS_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Who may come in, the caps, how long a connection may stay silent or a target stalled."""

    total: int = DEFAULT_MAX_CONNECTIONS
    per_visitor: int = DEFAULT_MAX_CONNECTIONS_PER_VISITOR
    first_request_timeout: float = FIRST_REQUEST_TIMEOUT
    stall_timeout: float = STALL_TIMEOUT
    request_head_bytes: int = REQUEST_HEAD_BYTES
    request_head_lines: int = REQUEST_HEAD_LINES
    idle_timeout: float = IDLE_BETWEEN_REQUESTS
    stalled_after: float = STALLED_AFTER
    min_body_rate: int = MIN_BODY_RATE
    visitors: VisitorPolicy = field(default_factory=VisitorPolicy)

    @property
    def extra_forwards_total(self) -> int:
        """The places extra forwards may hold together (EXTRA_FORWARDS_SHARE of the total)."""
        return int(self.total * EXTRA_FORWARDS_SHARE)


class VisitorCounts:
    """How many places each visitor holds, how many connections it has closing, and in all.

    Asked by the originator address the SSH server reports, counted per visitor as refusals are
    (visitor_of: the IPv4 address, the IPv6 /64): a subscriber picks addresses in its /64 at
    will, so counting per address would let one of them take every place. A place is an open
    connection; a closing one was closed on our side and not yet by the SSH server. Places are
    also counted per visitor network (visitor_network_of: the IPv6 /48), which fair places
    weigh. Visitors and networks holding nothing are forgotten, so the tables are never larger
    than the connections counted.
    """

    def __init__(self) -> None:
        self._places: dict[str, int] = {}
        self._network_places: dict[str, int] = {}
        self._closing: dict[str, int] = {}
        self.total = 0
        self.closing = 0

    def places_of(self, originator: str) -> int:
        """The places the visitor `originator` belongs to holds now."""
        return self._places.get(visitor_of(originator), 0)

    def network_places_of(self, originator: str) -> int:
        """The places the visitor network `originator` belongs to holds now."""
        return self._network_places.get(visitor_network_of(originator), 0)

    def held_by(self, originator: str) -> int:
        """The connections that visitor has at the SSH server: places and closing ones."""
        visitor = visitor_of(originator)
        return self._places.get(visitor, 0) + self._closing.get(visitor, 0)

    def add(self, originator: str) -> None:
        """One more place for the visitor `originator` belongs to."""
        self._count_place(originator, 1)
        self.total += 1

    def close(self, originator: str) -> None:
        """One of that visitor's places is closing: free for others, still its connection."""
        self.remove(originator, closing=False)
        _count(self._closing, visitor_of(originator), 1)
        self.closing += 1

    def remove(self, originator: str, closing: bool) -> None:
        """One connection (`closing` or a place) of that visitor fewer."""
        if closing:
            _count(self._closing, visitor_of(originator), -1)
            self.closing -= 1
        else:
            self._count_place(originator, -1)
            self.total -= 1

    def _count_place(self, originator: str, change: int) -> None:
        _count(self._places, visitor_of(originator), change)
        _count(self._network_places, visitor_network_of(originator), change)


def _count(counts: dict[str, int], visitor: str, change: int) -> None:
    """`visitor`'s count changed by `change`; a visitor counting nothing is forgotten."""
    left = counts.get(visitor, 0) + change
    if left:
        counts[visitor] = left
    else:
        del counts[visitor]


class Admission:
    """One admitted connection: open (it holds a place), then maybe closing, then released.

    Released exactly once, however often release() is called. It may be evicted only once its
    channel has said how (may_be_evicted): an in-process HTTP connection can tell when it waits
    for a request or its request has stalled; a TCP forward cannot, and never is.
    """

    __slots__ = (
        "_close",
        "_gate",
        "_may_give_place",
        "_released",
        "closing",
        "extra_forward",
        "visitor",
    )

    def __init__(self, gate: ChannelGate, visitor: str, extra_forward: bool) -> None:
        self._gate = gate
        self.extra_forward = extra_forward
        self._released = False
        self._may_give_place: Callable[[], bool] = _never
        self._close: Callable[[], None] = _nothing
        self.closing = False
        self.visitor = visitor

    def may_be_evicted(self, may_give_place: Callable[[], bool], close: Callable[[], None]) -> None:
        """It may give its place up while `may_give_place()`; `close` then closes it."""
        self._may_give_place = may_give_place
        self._close = close

    @property
    def evictable(self) -> bool:
        """Whether it could give its place up now (idle, or its request stalled)."""
        return not self._released and not self.closing and self._may_give_place()

    def evict(self) -> None:
        """Close it and give its place up at once, not when its channel has closed."""
        self.give_place_up()
        self._close()

    def give_place_up(self) -> None:
        """Its channel is being closed on our side: the place goes to others at once.

        It counts against its visitor until released (when the SSH server has closed the
        channel too), and among the closing channels; when those are as many as allowed, it
        keeps its place instead.
        """
        if not self._released and not self.closing:
            self.closing = self._gate.closing(self)

    def release(self) -> None:
        """The connection is gone: its place, or its share of the closing ones, is free."""
        if not self._released:
            self._released = True
            self._gate.released(self)


def _never() -> bool:
    return False


def _nothing() -> None:
    """What an admission that cannot be evicted does to close."""


class _Bursts:
    """Tells which event starts a burst: the one to log at warning level, the rest at debug.

    Events closer together than QUIET_BEFORE_NEXT_WARNING belong to one burst.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: float | None = None

    def starts(self) -> bool:
        """One more event: whether it starts a burst."""
        now = self._clock()
        starts = self._last is None or now - self._last >= QUIET_BEFORE_NEXT_WARNING
        self._last = now
        return starts


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
        # Admissions holding a place (not closing), oldest first (dicts keep insertion order).
        self._open: dict[Admission, None] = {}
        self._refusals = _Bursts(clock)
        self._evictions = _Bursts(clock)
        self.evictions = 0
        self.visitors = VisitorRecord(clock)

    def admit(self, visitor: str, *, extra_forward: bool = False) -> Admission:
        """A place for one more connection of `visitor`, or ChannelOpenError (refused, full).

        A connection of an `extra_forward` is refused too while the extra forwards hold their
        share of the total (EXTRA_FORWARDS_SHARE).

        The tunnel's own check has a place beyond the caps while it runs (visitors.py): with
        every place taken it would be refused like a visitor, and the tunnel reconnected. With
        the total full, a newcomer takes the place of the oldest connection waiting for a
        request (or with its request stalled) of the visitor holding the most places, if that
        visitor holds more than the newcomer would; refused if there is none.
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
        if extra_forward:
            self._within_extra_forwards_share(visitor)
        # One place beyond the total, for the check alone: taken, the check meets the caps too.
        if not own_check or self._counts.total > self.limits.total:
            self._within_caps(visitor)
        self._counts.add(visitor)
        admission = Admission(self, visitor, extra_forward)
        self._open[admission] = None
        self.stats.active_connections = self._counts.total
        return admission

    def _within_caps(self, visitor: str) -> None:
        """Nothing if `visitor` may have one more place (maybe another's); else refused.

        Its closing connections count against its cap: each may hold what the SSH server
        buffered for it.
        """
        if self._counts.held_by(visitor) >= self.limits.per_visitor:
            held_by = visitor_of(visitor)  # its /64 for an IPv6 address
            self._refuse(visitor, f"{held_by} holds {self.limits.per_visitor} (the cap)")
        if self._counts.total >= self.limits.total:
            self._evict_for(visitor)

    def _within_extra_forwards_share(self, visitor: str) -> None:
        """Nothing if the extra forwards may hold one more place; else `visitor` is refused."""
        # Counted when asked: at most `total` places are open, and only extra forwards ask.
        held = sum(admission.extra_forward for admission in self._open)
        if held >= self.limits.extra_forwards_total:
            self._refuse(visitor, f"extra forwards hold {held} (their share of the total)")

    def closing(self, admission: Admission) -> bool:
        """Called by Admission.give_place_up only: whether its place is freed now."""
        if self._closing_full():
            return False
        del self._open[admission]
        self._counts.close(admission.visitor)
        self.stats.active_connections = self._counts.total
        return True

    def _closing_full(self) -> bool:
        return self._counts.closing >= self.limits.total * CLOSING_PER_PLACE

    def released(self, admission: Admission) -> None:
        """Called by Admission.release only."""
        if not admission.closing:
            del self._open[admission]
        self._counts.remove(admission.visitor, admission.closing)
        self.stats.active_connections = self._counts.total

    def _evict_for(self, visitor: str) -> None:
        """Free a place for `visitor` in the full total, or refuse it."""
        candidates = [
            admission
            for admission in self._open
            if admission.evictable and self._outweighs(admission.visitor, visitor)
        ]
        if not candidates:
            self._refuse(visitor, f"{self._counts.total} connections open (the cap)")
        if self._closing_full():  # the evicted one would keep its place
            self._refuse(visitor, f"{self._counts.closing} connections closing (the cap)")
        # max() keeps the first of equals: the oldest of the network, then visitor, holding most.
        evicted = max(candidates, key=lambda admission: self._weight(admission.visitor))
        self.evictions += 1
        if self._evictions.starts():
            _LOGGER.warning(
                "All tunnelled connections are taken: closing idle or stalled ones of the "
                "visitors that hold the most (one of %s for %s). Further ones are counted, and "
                "logged again once a minute has passed without any",
                evicted.visitor,
                visitor,
            )
        else:
            _LOGGER.debug(
                "Closed an idle or stalled connection of %s for %s",
                evicted.visitor,
                visitor,
            )
        evicted.evict()

    def _weight(self, originator: str) -> tuple[int, int]:
        """What its network, then its visitor, hold: who gives a place up first."""
        return self._counts.network_places_of(originator), self._counts.places_of(originator)

    def _outweighs(self, holder: str, newcomer: str) -> bool:
        """Whether `holder` holds more than `newcomer` would with one place more.

        Visitors are compared, and, in different networks, their networks too: an IPv6
        household's /64s each hold little, its /48 holds them all.
        """
        counts = self._counts
        if counts.places_of(holder) > counts.places_of(newcomer) + 1:
            return True
        if visitor_network_of(holder) == visitor_network_of(newcomer):
            return False
        return counts.network_places_of(holder) > counts.network_places_of(newcomer) + 1

    def _refuse(self, visitor: str, why: str) -> NoReturn:
        self.stats.connections_refused += 1
        self.visitors.refused_for_capacity(visitor)
        if self._refusals.starts():
            _LOGGER.warning(
                "Refusing tunnelled connections: %s. Further refusals are counted, and "
                "logged again once a minute has passed without any",
                why,
            )
        else:
            _LOGGER.debug("Refused a tunnelled connection from %s: %s", visitor, why)
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, "too many connections")
