"""An aiohttp RequestHandler bounded as a tunnelled connection is, fed as its connection would be.

What the attack tests on the head bound share (aiohttp_internals.bound_requests): a stream of
requests, then a head of far more lines than the bound (FLOOD), cut into pieces anywhere; the
outcome says whether the bound cut that head wherever aiohttp took it for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import _ErrInfo

from custom_components.ssh_callhome.engine import aiohttp_internals
from custom_components.ssh_callhome.engine.limits import REQUEST_HEAD_LINES, ConnectionLimits

from .aiohttp_parsers import answering_server, request_handler

LINE = b"X-A: b\r\n"
# The next request's head: more lines than the bound, never ended.
FLOOD = b"GET / HTTP/1.1\r\nHost: x\r\n" + LINE * (2 * REQUEST_HEAD_LINES)
PIECE = 32 * 1024  # at most what one SSH packet brings


@dataclass
class Bounded:
    """An aiohttp RequestHandler with its requests bounded, fed as its connection would."""

    handler: web.RequestHandler
    too_large: list[None] = field(default_factory=list)
    refused: bool = False

    def send(self, piece: bytes) -> None:
        """Hand `piece` to aiohttp as the connection would; note whether it was refused."""
        before = len(self.handler._messages)
        try:
            self.handler.data_received(piece)
        except Exception:  # noqa: BLE001 - what aiohttp does not answer closes the connection
            self.refused = True
        # An error aiohttp answers (400) in a request's place: the answer closes the connection.
        errors = [m for m, _ in list(self.handler._messages)[before:] if isinstance(m, _ErrInfo)]
        self.refused = self.refused or bool(errors)

    def payload(self, request: int) -> StreamReader | None:
        """The payload of the `request`th request (from 1), if aiohttp parsed it."""
        messages = list(self.handler._messages)
        return messages[request - 1][1] if len(messages) >= request else None

    def held_lines(self) -> int:
        """The header lines aiohttp's parser holds of a head it has not ended (Python's only)."""
        parser = self.handler._request_parser
        return len(getattr(getattr(parser, "_parser", None), "_lines", ()))


def bounded(python_parser: bool) -> Bounded:
    """A connection's handler with aiohttp's C parser (as installed) or its Python one."""
    handler = request_handler(answering_server(), python_parser)
    connection = Bounded(handler)
    events = aiohttp_internals.RequestEvents(
        lambda: None, lambda: connection.too_large.append(None), lambda: None, lambda _: None
    )
    assert aiohttp_internals.bound_requests(handler, ConnectionLimits(), events) is not None
    return connection


def pieces_of(stream: bytes, cuts: list[int]) -> Iterator[bytes]:
    """`stream` cut at `cuts` (offsets, in any order), each piece at most PIECE."""
    bounds = {cut % (len(stream) + 1) for cut in cuts} | set(range(0, len(stream), PIECE))
    edges = [*sorted(bounds | {0}), len(stream)]
    return (stream[start:end] for start, end in pairwise(edges) if end > start)


def outcome(python_parser: bool, stream: bytes, cuts: list[int], requests: int = 1) -> str:
    """What became of FLOOD after `stream` (of `requests` requests) cut at `cuts`.

    "cut" where the bound cut it, "uncut" where aiohttp ended the last request's body and the
    bound did not cut the head after it (the flaw); "refused" where aiohttp refused the stream
    (the connection is closed), "body" where a body did not end (the flood is body),
    "upgraded" where aiohttp parses no more (what follows waits, bounded by MAX_UPGRADE_TAIL).
    """
    connection = bounded(python_parser)
    for piece in pieces_of(stream + FLOOD, cuts):
        connection.send(piece)
    last = connection.payload(requests)
    if connection.refused:
        return "refused"
    if connection.handler._upgrade:
        return "upgraded"
    if last is None:
        return "body"  # an earlier request's body took the rest
    if connection.too_large == [None] and not last.is_eof():
        return "cut"  # the bound refused the body's framing: the connection is closed
    if not last.is_eof():
        return "body"
    return "cut" if connection.too_large == [None] else "uncut"
