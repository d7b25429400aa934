"""Who may come through the tunnel: networks allowed and refused, and what was refused.

A visitor is the originator address the SSH server reports for a forwarded connection: the
visitor's own address with `GatewayPorts yes`, the address of whatever connected on the server
itself otherwise (a reverse proxy, or 127.0.0.1). An IPv4 address the server reports in its
IPv4-mapped IPv6 form (::ffff:192.0.2.1) is the IPv4 address, and a network written that way is
the IPv4 network: each list catches a visitor however the server spells its address.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Protocol

type Address = IPv4Address | IPv6Address
type Network = IPv4Network | IPv6Network

# A refused visitor is announced at most once in this many seconds; it is also the interval
# over which the overall bound below applies.
ANNOUNCE_INTERVAL = 60.0
# Refused visitors announced one by one in an interval, all of them together: enough to name the
# few visitors an automation that notifies would tell of; a flood beyond is one summary event.
MAX_ANNOUNCED_PER_INTERVAL = 10
# An IPv6 visitor is its /64: one subscriber's network (RFC 6177), where an attacker picks
# addresses at will, so a per-address limit would be none.
IPV6_VISITOR_PREFIX = 64
# When places are given to newcomers, IPv6 visitors are weighed by their /48 as well: a home is
# delegated a /56 and a business a /48 (RFC 6177), so one subscriber is up to 65,536 /64s, each
# a visitor to the caps; counted by /48 they weigh as one. Only idle or stalled connections are
# ever given up, so strangers sharing a provider's /48 lose nothing that moves.
IPV6_NETWORK_PREFIX = 48
# Refusals kept for diagnostics, and originators kept to tell whether the lists can apply.
REFUSALS_KEPT = 20
ORIGINATORS_KEPT = 20
# Every originator that is no address is one visitor: the server chose such text, not a visitor.
NOT_AN_ADDRESS = "not an address"
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")


class InvalidNetwork(ValueError):
    """A line of a network list that is no address or network; names the line."""

    def __init__(self, number: int, line: str) -> None:
        super().__init__(f"line {number}: {line}")
        self.number = number
        self.line = line


def originator_address(reported: str) -> Address | None:
    """The address the server reported, IPv4-mapped IPv6 as IPv4; None if it is no address."""
    try:
        address = ip_address(reported)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(text: str) -> tuple[Network, ...]:
    """One address or CIDR network a line (blank lines skipped), host bits unset."""
    networks = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            networks.append(_network(number, line.strip()))
    return tuple(networks)


def _network(number: int, line: str) -> Network:
    try:
        network = ip_network(line)
    except ValueError:
        # Also a network with host bits set (192.168.1.5/24): which one was meant is a guess.
        raise InvalidNetwork(number, line) from None
    if isinstance(network, IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # every address of ::ffff:0:0/96 has one
        return IPv4Network((mapped, network.prefixlen - 96))
    return network


@dataclass(frozen=True, slots=True)
class VisitorPolicy:
    """Networks allowed (empty: everybody) and refused; a refused one wins over an allowed."""

    allowed: tuple[Network, ...] = ()
    refused: tuple[Network, ...] = ()

    def refusal(self, reported: str) -> str | None:
        """Why a visitor from `reported` is refused (the rule), or None when it may come in."""
        if not self.allowed and not self.refused:
            return None
        address = originator_address(reported)
        if address is None:  # no address at all: no list can vouch for it
            return "not an address"
        if any(address in network for network in self.refused):
            return "in the refused networks"
        if self.allowed and not any(address in network for network in self.allowed):
            return "not in the allowed networks"
        return None


def visitor_of(reported: str) -> str:
    """Who a refusal is counted against: the IPv4 address, or the IPv6 address's /64."""
    return _within(reported, IPV6_VISITOR_PREFIX)


def visitor_network_of(reported: str) -> str:
    """The network a visitor is weighed by for fair places: the IPv4 address, the IPv6 /48."""
    return _within(reported, IPV6_NETWORK_PREFIX)


def _within(reported: str, ipv6_prefix: int) -> str:
    """The IPv4 address itself, or the IPv6 address's network of `ipv6_prefix` bits."""
    address = originator_address(reported)
    if address is None:
        return NOT_AN_ADDRESS
    if isinstance(address, IPv4Address):
        return str(address)
    host_bits = 128 - ipv6_prefix
    return str(IPv6Network((int(address) >> host_bits << host_bits, ipv6_prefix)))


@dataclass(frozen=True, slots=True)
class VisitorRefusal:
    """One refused visitor, for diagnostics."""

    at: datetime
    address: str
    rule: str


@dataclass(frozen=True, slots=True)
class RefusalNotice:
    """What listeners hear: one refused visitor, or a summary of those not announced.

    A summary (address None) ends an interval in which more visitors were refused than are
    announced one by one: `not_announced` counts the refused connections of that interval that
    had no notice of their own (repeats of announced visitors included).
    """

    address: str | None
    not_announced: int = 0


RefusalListener = Callable[[RefusalNotice], None]


@dataclass(slots=True)
class OwnCheck:
    """The tunnel's own public-path check under way, as the gate sees it.

    `taken`: a connection from `originator` got the place kept for the check.
    `refused_for_capacity`: the caps refused a connection from `originator` meanwhile: maybe the
    check itself, which a visitor from its address left without its place.
    """

    originator: str
    taken: bool = False
    refused_for_capacity: bool = False


class Pending(Protocol):
    """A callback due later (asyncio's TimerHandle)."""

    def cancel(self) -> None:
        """It is not to run."""


# Runs a callback after a delay in seconds (the event loop's call_later); tests step it by hand.
type Scheduler = Callable[[float, Callable[[], None]], Pending]


def _call_later(delay: float, callback: Callable[[], None]) -> Pending:
    return asyncio.get_running_loop().call_later(delay, callback)


class VisitorRecord:
    """Recent originators, the last refusals, and who hears of them, within bounds.

    A refused visitor (an IPv4 address, an IPv6 /64) is announced at most once an interval, and
    at most MAX_ANNOUNCED_PER_INTERVAL visitors are in one interval; beyond, the interval ends
    with one summary. The table of announced visitors holds only those of the current and the
    previous interval: at most twice that bound, whatever the number of addresses.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, call_later: Scheduler = _call_later
    ) -> None:
        self._clock = clock
        self._call_later = call_later
        self.recent_originators: deque[str] = deque(maxlen=ORIGINATORS_KEPT)
        self.refusals: deque[VisitorRefusal] = deque(maxlen=REFUSALS_KEPT)
        self._announced: dict[str, float] = {}
        self._listeners: list[RefusalListener] = []
        # The interval under way (None between intervals), what it announced and what not.
        self._interval_start: float | None = None
        self._announced_in_interval = 0
        self._not_announced = 0
        # Set when the overall bound held a visitor back: the interval ends with a summary.
        self._summary_due: Pending | None = None
        # The tunnel's own public-path check under way: not a visitor.
        self._own_check: OwnCheck | None = None

    def add_listener(self, listener: RefusalListener) -> Callable[[], None]:
        """Call `listener` with each notice; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @contextmanager
    def own_check(self, originator: str) -> Iterator[OwnCheck]:
        """The tunnel's own check arrives from `originator` meanwhile: it is not a visitor.

        Which connection is the check cannot be told for sure: the first from `originator`
        while it runs is taken for it. It is kept out of the recent originators, which inform
        a warning, and gets the place the caps keep for the check (limits.py). What the caps
        did to connections from `originator` is recorded in what this yields.
        """
        check = OwnCheck(originator)
        self._own_check = check
        try:
            yield check
        finally:
            self._own_check = None

    def arrived(self, reported: str) -> bool:
        """A connection arrived, whatever becomes of it; whether it is taken for the own check."""
        check = self._own_check
        if check is not None and not check.taken and reported == check.originator:
            check.taken = True
            return True
        self.recent_originators.append(reported)
        return False

    def refused_for_capacity(self, reported: str) -> None:
        """The caps refused a connection from `reported`: noted if the own check comes from there.

        Visitors from other addresses refused meanwhile say nothing of the check's own fate.
        """
        check = self._own_check
        if check is not None and reported == check.originator:
            check.refused_for_capacity = True

    def refused(self, reported: str, rule: str) -> None:
        """A visitor was refused: kept, and announced within the bounds."""
        self.refusals.append(VisitorRefusal(datetime.now(UTC), reported, rule))
        now = self._clock()
        start = self._interval_start
        if start is None or now - start >= ANNOUNCE_INTERVAL:
            self.end_interval()
            start = self._start_interval(now)
        visitor = visitor_of(reported)
        last = self._announced.get(visitor)
        if last is not None and now - last < ANNOUNCE_INTERVAL:
            self._not_announced += 1
        elif self._announced_in_interval < MAX_ANNOUNCED_PER_INTERVAL:
            self._announced[visitor] = now
            self._announced_in_interval += 1
            self._tell(RefusalNotice(reported))
        else:
            self._not_announced += 1
            if self._summary_due is None:
                delay = start + ANNOUNCE_INTERVAL - now
                self._summary_due = self._call_later(delay, self.end_interval)

    def end_interval(self) -> None:
        """End the interval under way: its summary, if one is due, goes out now.

        Called when the interval is over, and when the tunnel stops (nothing is left pending).
        """
        summary_due, self._summary_due = self._summary_due, None
        self._interval_start = None
        if summary_due is not None:
            summary_due.cancel()
            self._tell(RefusalNotice(None, self._not_announced))

    def _start_interval(self, now: float) -> float:
        self._interval_start = now
        self._announced_in_interval = 0
        self._not_announced = 0
        # Only visitors announced within the last interval still matter.
        self._announced = {
            visitor: at for visitor, at in self._announced.items() if now - at < ANNOUNCE_INTERVAL
        }
        return now

    def _tell(self, notice: RefusalNotice) -> None:
        for listener in list(self._listeners):
            listener(notice)
