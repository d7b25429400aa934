"""Attack: a head that begins in the same piece as the end of a body is not counted.

aiohttp_internals._HeadBoundParser passes a piece whole while a body is under way, and starts
counting a head only in the next piece. A request with a one-byte body, then, in the same
piece (one SSH packet, 32 KiB), that byte and the start of the next request: about 4,000
header lines of 8 bytes pass uncounted, and the count starts from nothing in the next piece.
Pipelined, every request can so carry 30 times the line bound (see also the unbounded queue
of pipelined requests, test_attack_stalled_response.py).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from custom_components.ssh_callhome.engine import aiohttp_internals
from custom_components.ssh_callhome.engine.limits import REQUEST_HEAD_LINES, ConnectionLimits

PIECE = 32 * 1024  # at most what one SSH packet brings
LINE = b"X-A: b\r\n"
WITH_A_BODY = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"
NEXT_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n"


async def test_a_head_after_a_body_in_the_same_piece_is_bounded() -> None:
    async def answer(_request: web.BaseRequest) -> web.Response:
        return web.Response()

    handler = web.Server(answer)()
    assert isinstance(handler, web.RequestHandler)
    too_large: list[None] = []
    events = aiohttp_internals.RequestEvents(print, lambda: too_large.append(None), print, print)
    assert aiohttp_internals.bound_requests(handler, ConnectionLimits(), events)
    handler.data_received(WITH_A_BODY)
    uncounted = b"x" + NEXT_REQUEST
    uncounted += LINE * ((PIECE - len(uncounted)) // len(LINE))
    assert len(uncounted) <= PIECE
    handler.data_received(uncounted)  # one piece: the body's end and most of the next head
    handler.data_received(LINE * 100 + b"\r\n")
    await asyncio.sleep(0)
    lines = [len(getattr(message, "headers", ())) for message, _ in handler._messages]
    print(f"head after a body: requests parsed with {lines} header lines, cut: {bool(too_large)}")
    assert too_large
    assert max(lines) <= REQUEST_HEAD_LINES
