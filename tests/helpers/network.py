"""Loopback ports and bounded waiting."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until true; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def port_accepts(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:port is accepted."""
    try:
        _reader, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def wait_for_port(port: int, accepting: bool, timeout: float) -> None:
    """Wait until 127.0.0.1:port accepts connections (or stops accepting them)."""
    deadline = time.monotonic() + timeout
    while await port_accepts(port) is not accepting:
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} still {'closed' if accepting else 'open'}")
        await asyncio.sleep(0.02)
