"""What the tunnel's request-head bound costs Home Assistant's thread, beside aiohttp's own parsing.

A real aiohttp RequestHandler (its C parser) is fed request bodies in 32 KiB pieces (what one SSH
packet brings), once alone and once bounded as a tunnelled connection is
(aiohttp_internals.bound_requests); the CPU milliseconds per MiB of each are printed, the least of
ROUNDS runs, for the bodies whose framing costs the bound most (chunked_body.py).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from custom_components.ssh_callhome.engine import aiohttp_internals
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.aiohttp_parsers import answering_server, request_handler

PIECE = 32 * 1024
MiB = 1024 * 1024
ROUNDS = 3
CHUNKED = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
BODIES = {
    "Content-Length, 16 MiB": (
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (16 * MiB),
        b"\n" * (16 * MiB),
    ),
    "chunked, 1 MiB chunks": (CHUNKED, (b"100000\r\n" + b"\n" * MiB + b"\r\n") * 16),
    "chunked, 1-byte chunks": (CHUNKED, b"1\r\nx\r\n" * (MiB // 6)),
    "chunked, 1 KiB extensions": (
        CHUNKED,
        (b"400;" + b"e" * 1000 + b"\r\n" + b"x" * 1024 + b"\r\n") * 512,
    ),
}


# Requests pipelined in one piece, each after blank lines (which aiohttp skips): heads, not bodies.
PIPELINED = b"\r\n" * 126 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PIPELINED_NAME = "16 GETs, 126 blank lines each"


def _cpu_ms_per_mib(head: bytes, body: bytes, bounded: bool) -> float:
    handler = _handler(bounded)
    handler.data_received(head)
    [(_message, payload)] = list(handler._messages)
    started = time.process_time()
    for start in range(0, len(body), PIECE):
        handler.data_received(body[start : start + PIECE])
        payload._buffer.clear()  # read, as the handler would: nothing piles up
    return (time.process_time() - started) * 1000 / (len(body) / MiB)


def _pipelined_cpu_ms_per_mib(bounded: bool) -> float:
    handler = _handler(bounded)
    piece = PIPELINED * 16
    started = time.process_time()
    for _ in range(100):
        handler.data_received(piece)
        handler._messages.clear()  # handled, as the request loop would
    return (time.process_time() - started) * 1000 / (100 * len(piece) / MiB)


def _handler(bounded: bool) -> web.RequestHandler:
    """Aiohttp's handler for one connection, alone or bounded as a tunnelled one is."""
    handler = request_handler(answering_server())
    if bounded:
        events = aiohttp_internals.RequestEvents(_nothing, _cut, _nothing, _ignore)
        assert aiohttp_internals.bound_requests(handler, ConnectionLimits(), events)
    return handler


def _nothing() -> None:
    pass


def _ignore(_size: int) -> None:
    pass


def _cut() -> None:
    raise RuntimeError("the bound cut a body it should have passed")


async def _measure() -> None:
    print(f"{'body (32 KiB pieces)':<30} {'aiohttp alone':>14} {'bounded':>10}   ms CPU per MiB")
    for name, (head, body) in BODIES.items():
        alone = min(_cpu_ms_per_mib(head, body, False) for _ in range(ROUNDS))
        bounded = min(_cpu_ms_per_mib(head, body, True) for _ in range(ROUNDS))
        _print_row(name, alone, bounded)
    alone = min(_pipelined_cpu_ms_per_mib(False) for _ in range(ROUNDS))
    bounded = min(_pipelined_cpu_ms_per_mib(True) for _ in range(ROUNDS))
    _print_row(PIPELINED_NAME, alone, bounded)


def _print_row(name: str, alone: float, bounded: float) -> None:
    print(f"{name:<30} {alone:>14.2f} {bounded:>10.2f}   ({bounded / alone:.2f}x)")


def measure_head_bound() -> None:
    """Print what the bound costs, beside aiohttp alone, for each body."""
    asyncio.run(_measure())
