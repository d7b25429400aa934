"""Attack: one IPv6 subscriber (a /64) takes every place, as refusal events would count it.

The gate counts places per address; refused-visitor events count an IPv6 visitor per /64
(visitors.py), since a subscriber picks addresses in its /64 at will. With `GatewayPorts yes`
the server reports each of them: 100 addresses of one /64, one silent connection each (renewed
every 30 s, when the first-request timer closes it), held the whole total, and fair places
evicted none of them for a newcomer (nobody held more than the newcomer would). The caps now
count a /64 as one visitor, for its cap and for fair places alike.
"""

from __future__ import annotations

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.limits import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
    ChannelGate,
    ConnectionLimits,
)

ONE_SUBSCRIBER = [f"2001:db8:1:2::{index:x}" for index in range(1, DEFAULT_MAX_CONNECTIONS + 1)]
# Subscribers that fill the total together, one address a connection: each at its cap.
SUBSCRIBERS = DEFAULT_MAX_CONNECTIONS // DEFAULT_MAX_CONNECTIONS_PER_VISITOR
FRESH = "192.0.2.50"


def admit_idle(gate: ChannelGate, visitor: str, closed: list[str]) -> None:
    """A connection that waits for its (first or next) request: it may be evicted."""
    gate.admit(visitor).may_be_evicted(lambda: True, lambda: closed.append(visitor))


def test_one_ipv6_subscriber_holds_no_more_than_the_per_visitor_cap() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(), stats)
    closed: list[str] = []
    for address in ONE_SUBSCRIBER:
        try:
            admit_idle(gate, address, closed)
        except asyncssh.ChannelOpenError:
            break
    held = stats.active_connections
    print(f"one /64 holds {held} places (per-visitor cap {DEFAULT_MAX_CONNECTIONS_PER_VISITOR})")
    assert held <= DEFAULT_MAX_CONNECTIONS_PER_VISITOR


def test_a_fresh_visitor_gets_a_place_while_ipv6_subscribers_flood() -> None:
    """Fair places see each /64 as one visitor: each holds its cap, more than a newcomer."""
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(), stats)
    closed: list[str] = []
    for subscriber in range(SUBSCRIBERS):
        for index in range(1, DEFAULT_MAX_CONNECTIONS_PER_VISITOR + 1):
            admit_idle(gate, f"2001:db8:1:{subscriber:x}::{index:x}", closed)
    assert stats.active_connections == DEFAULT_MAX_CONNECTIONS
    try:
        gate.admit(FRESH)
    except asyncssh.ChannelOpenError:
        pytest.fail(f"a fresh visitor was refused; {len(closed)} idle places were given up")


def test_many_addresses_take_every_idle_place_of_a_household() -> None:
    """How the policy behaves (held as designed, noted for the lead): newcomers from fresh
    addresses take a household's idle keep-alive connections one by one, down to one."""
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(), stats)
    closed: list[str] = []
    household = "192.0.2.7"
    for _ in range(8):  # a browser's kept-alive connections, between requests
        admit_idle(gate, household, closed)
    # One connection from each of many subscribers: every one a visitor of its own.
    attackers = (f"2001:db8:{index:x}::1" for index in range(1, 2 * DEFAULT_MAX_CONNECTIONS))
    for _ in range(DEFAULT_MAX_CONNECTIONS - 8):
        admit_idle(gate, next(attackers), closed)
    for _ in range(DEFAULT_MAX_CONNECTIONS):  # bounded: at most one per place
        try:
            admit_idle(gate, next(attackers), closed)
        except (asyncssh.ChannelOpenError, StopIteration):
            break
    print(f"household's idle connections closed for newcomers: {closed.count(household)} of 8")
    assert closed.count(household) == 7
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit(household)  # its browser reconnecting: refused
