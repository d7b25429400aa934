"""Whatever answers at the server's address cannot make Home Assistant allocate and spin.

Before the server's key is checked, asyncssh took any packet length and gathered the bytes:
about 16 s of CPU, +117 MiB and loop stalls per attempt, again at every retry. The connection
now refuses a packet longer than OpenSSH's own limit at its header.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from dataclasses import replace as replace_field
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import fetch_host_key, open_connection
from harness.engine import loopback_settings
from harness.hostile_server import hostile_server
from harness.logs import keep_log_capture_small

_PAGE_SIZE = resource.getpagesize()
# What one attempt may cost at most.
_MAX_SECONDS = 1.0
_MAX_CPU_SECONDS = 0.3
_MAX_RSS_GROWTH = 16 * 1024**2
_MAX_LOOP_LAG = 0.1


def rss() -> int:
    """This process's resident memory now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE_SIZE


@dataclass
class Cost:
    """What an attempt cost this process: wall and CPU seconds, peak memory, worst loop stall."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rss_growth: int = 0
    loop_lag: float = 0.0


@contextlib.asynccontextmanager
async def measured() -> AsyncIterator[Cost]:
    """Measure the block; memory and the loop's lag are sampled every 10 ms by a task."""
    cost = Cost()
    start, cpu_start, rss_start = time.monotonic(), time.process_time(), rss()

    def sample() -> None:
        cost.rss_growth = max(cost.rss_growth, rss() - rss_start)

    async def tick() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            cost.loop_lag = max(cost.loop_lag, time.monotonic() - before - 0.01)
            sample()

    ticker = asyncio.create_task(tick())
    try:
        yield cost
    finally:
        sample()
        cost.seconds = time.monotonic() - start
        cost.cpu_seconds = time.process_time() - cpu_start
        ticker.cancel()


def attempts(client_key: asyncssh.SSHKey) -> dict[str, Callable[[int], Awaitable[object]]]:
    """Both ways the integration connects: the set-up's key fetch and the tunnel."""
    pinned = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()

    def tunnel(port: int) -> Awaitable[object]:
        settings = loopback_settings(port, "root", client_key, pinned, 9)
        return open_connection(replace_field(settings, connect_timeout=10.0))

    return {"key fetch": lambda port: fetch_host_key("127.0.0.1", port, 10.0), "tunnel": tunnel}


@pytest.mark.parametrize("attempt", ["key fetch", "tunnel"])
async def test_a_huge_packet_before_the_key_exchange_is_refused_at_its_header(
    socket_enabled: None,
    client_key: asyncssh.SSHKey,
    caplog: pytest.LogCaptureFixture,
    attempt: str,
) -> None:
    keep_log_capture_small(caplog)
    with hostile_server() as port:
        async with measured() as cost:
            with pytest.raises(asyncssh.ProtocolError, match="Packet length 2147483632 over"):
                await attempts(client_key)[attempt](port)
    print(f"{attempt}: {cost}")
    assert cost.seconds < _MAX_SECONDS
    assert cost.cpu_seconds < _MAX_CPU_SECONDS
    assert cost.rss_growth < _MAX_RSS_GROWTH
    assert cost.loop_lag < _MAX_LOOP_LAG
