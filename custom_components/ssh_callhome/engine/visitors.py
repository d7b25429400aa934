"""Who may come through the tunnel: networks allowed and refused, and what was refused.

A visitor is the originator address the SSH server reports for a forwarded connection: the
visitor's own address with `GatewayPorts yes`, the address of whatever connected on the server
itself otherwise (a reverse proxy, or 127.0.0.1). An IPv4 address the server reports in its
IPv4-mapped IPv6 form (::ffff:192.0.2.1) is the IPv4 address, and a network written that way is
the IPv4 network: each list catches a visitor however the server spells its address.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

type Address = IPv4Address | IPv6Address
type Network = IPv4Network | IPv6Network

# Refused visitors are announced at most once per address in this many seconds.
ANNOUNCE_INTERVAL = 60.0
# Refusals kept for diagnostics, and originators kept to tell whether the lists can apply.
REFUSALS_KEPT = 20
ORIGINATORS_KEPT = 20
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


@dataclass(frozen=True, slots=True)
class VisitorRefusal:
    """One refused visitor, for diagnostics."""

    at: datetime
    address: str
    rule: str


RefusalListener = Callable[[str], None]


class VisitorRecord:
    """Recent originators, the last refusals, and who hears of them at most once a minute.

    Every table is bounded: the announcement times are pruned once a minute, so they hold only
    addresses announced within the last two minutes.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.recent_originators: deque[str] = deque(maxlen=ORIGINATORS_KEPT)
        self.refusals: deque[VisitorRefusal] = deque(maxlen=REFUSALS_KEPT)
        self._announced: dict[str, float] = {}
        self._pruned_at = clock()
        self._listeners: list[RefusalListener] = []
        # The tunnel's own public-path check, under way from this originator: not a visitor.
        self._own_check_from: str | None = None

    def add_listener(self, listener: RefusalListener) -> Callable[[], None]:
        """Call `listener(address)` for refused visitors; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @contextmanager
    def own_check(self, originator: str) -> Iterator[None]:
        """The tunnel's own check arrives from `originator` meanwhile: it is not recorded.

        Which connection is the check cannot be told for sure: the first from `originator`
        while it runs is taken for it. That only keeps it out of the recent originators,
        which inform a warning; the check passes the gate like any visitor.
        """
        self._own_check_from = originator
        try:
            yield
        finally:
            self._own_check_from = None

    def arrived(self, reported: str) -> None:
        """A visitor's connection arrived, whatever becomes of it."""
        if reported == self._own_check_from:
            self._own_check_from = None
            return
        self.recent_originators.append(reported)

    def refused(self, reported: str, rule: str) -> None:
        """A visitor was refused: kept, and announced unless it was within the last minute."""
        self.refusals.append(VisitorRefusal(datetime.now(UTC), reported, rule))
        now = self._clock()
        if now - self._pruned_at >= ANNOUNCE_INTERVAL:  # once a minute, not at every refusal
            self._pruned_at = now
            self._announced = {
                address: at
                for address, at in self._announced.items()
                if now - at < ANNOUNCE_INTERVAL
            }
        last = self._announced.get(reported)
        if last is not None and now - last < ANNOUNCE_INTERVAL:
            return
        self._announced[reported] = now
        for listener in list(self._listeners):
            listener(reported)
