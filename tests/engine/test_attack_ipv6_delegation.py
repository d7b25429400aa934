"""Attack: one IPv6 household (a /56 delegated prefix) takes every place and keeps newcomers out.

Home subscribers commonly get a /56 (256 /64s), businesses a /48. The caps count an IPv6
visitor per /64 (visitors.py), so one household is 256 visitors: one silent connection from
each of 100 of its /64s (renewed every 30 s, when the first-request timer closes it) fills the
default total, and fair places evict none of them for a newcomer, who would hold as many (one).
The earlier round found the same with one /64; the /64 is not where a subscriber ends.
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

# One connection from each of 100 /64s of the delegated prefix 2001:db8:aa:bb00::/56.
ONE_HOUSEHOLD = [f"2001:db8:aa:bb{index:02x}::1" for index in range(DEFAULT_MAX_CONNECTIONS)]
FRESH = "192.0.2.50"


def test_one_household_prefix_does_not_lock_newcomers_out() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(), stats)
    for address in ONE_HOUSEHOLD:
        try:
            gate.admit(address).may_be_evicted(lambda: True, lambda: None)
        except asyncssh.ChannelOpenError:
            break
    held = stats.active_connections
    print(
        f"one /56 holds {held} of {DEFAULT_MAX_CONNECTIONS} places "
        f"(per-visitor cap {DEFAULT_MAX_CONNECTIONS_PER_VISITOR})"
    )
    try:
        gate.admit(FRESH)
    except asyncssh.ChannelOpenError:
        pytest.fail(f"a fresh visitor was refused; the /56 holds {held} idle places")
