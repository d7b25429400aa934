"""What the modules that carry forwarded channels share: the factory types, the counters.

A module of its own, so that the gate (limits.py), the carriers (forwarding.py, bridge.py) and
the reaches into asyncssh and aiohttp (asyncssh_internals.py, aiohttp_internals.py) import it
without importing each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncssh

SessionFactory = Callable[[str, int], Awaitable[asyncssh.SSHTCPSession[bytes]]]
# What a channel is handed to in process: a server such as aiohttp's, one protocol a connection.
type ProtocolFactory = Callable[[], asyncio.BaseProtocol]


@dataclass(slots=True)
class TrafficStats:
    """Counters since the engine started; read by the sensors on their own schedule."""

    active_connections: int = 0
    connections_refused: int = 0  # beyond the caps (limits.py)
    visitors_refused: int = 0  # by the networks allowed and refused (visitors.py)
    bytes_received: int = 0  # from visitors, through the tunnel, to Home Assistant
    bytes_sent: int = 0  # from Home Assistant back to visitors
    round_trip_ms: float | None = None
