"""Every reach into aiohttp's private API, checked before use, with a fallback.

As in asyncssh_internals: each reach first checks what it relies on (as found in aiohttp 3.13);
where another aiohttp differs, that optimisation is left off, the tunnel works as plain aiohttp
would, and one warning per process says which optimisation is off and why.
"""

from __future__ import annotations

import asyncio
import functools
import io
import numbers
import os
from collections.abc import Awaitable, Callable
from typing import IO, Any, Protocol, cast

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.streams import StreamReader

from .channels import ProtocolFactory
from .limits import ConnectionLimits
from .private_api import attribute_problem, method_problem, report_off

FILE_RESPONSES = "The tunnel's way of sending files (larger chunks, headers with the first)"

type FileOpening = tuple[object, io.BufferedReader | None, os.stat_result, str | None]
type OpenFile = Callable[[web.BaseRequest, str], FileOpening]
type CopyFile = Callable[[AbstractStreamWriter, IO[Any], int, int], Awaitable[AbstractStreamWriter]]

type RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def with_tunnel_file_responses(server: ProtocolFactory, chunk_size: int) -> ProtocolFactory:
    """Protocols from aiohttp's `server` that send files as suits a tunnelled connection.

    aiohttp copies a file itself where the transport has no sendfile, as a tunnelled one has
    not: one executor round trip per chunk, 256 KiB unless the response says otherwise; these
    copy `chunk_size` bytes at a time. A file no larger than that is read whole in the
    executor job that opens it, which saves the round trip of reading it: a small file's
    request waits for one job instead of two. And aiohttp sends a file's headers at once,
    before its first chunk is read: here they wait for it, so a small file is one write (one
    SSH packet) instead of two.
    """

    def make_protocol() -> asyncio.BaseProtocol:
        protocol = server()
        _adapt_file_responses(protocol, chunk_size)
        return protocol

    return make_protocol


def _adapt_file_responses(protocol: asyncio.BaseProtocol, chunk_size: int) -> None:
    """Have `protocol` (aiohttp's, for one connection) adapt each of its file responses."""
    problem = _request_handler_problem(protocol) or _file_response_problem()
    if problem is not None:
        report_off(FILE_RESPONSES, problem, library=f"aiohttp {aiohttp.__version__}")
        return
    handle: RequestHandler = protocol._request_handler  # type: ignore[attr-defined]

    async def handle_for_the_tunnel(request: web.BaseRequest) -> web.StreamResponse:
        response = await handle(request)
        if isinstance(response, web.FileResponse):
            response._chunk_size = max(response._chunk_size, chunk_size)
            response._send_headers_immediately = False  # sent with the first chunk, or at EOF
            if request.method == hdrs.METH_GET and hdrs.RANGE not in request.headers:
                _ReadWithOpening(response, response._chunk_size)
        return response

    # aiohttp looks the handler up on the connection's protocol for each request.
    protocol._request_handler = handle_for_the_tunnel  # type: ignore[attr-defined]


def _request_handler_problem(protocol: asyncio.BaseProtocol) -> str | None:
    """Why `protocol` is not aiohttp's RequestHandler with a `_request_handler`; None if it is."""
    # Looked up, not imported: a renamed class must not stop the integration loading.
    handler_class = getattr(getattr(aiohttp, "web_protocol", None), "RequestHandler", None)
    if not isinstance(handler_class, type):
        return "no aiohttp.web_protocol.RequestHandler"
    if not isinstance(protocol, handler_class):
        return f"the server's protocol is {type(protocol).__name__}"
    if not callable(getattr(protocol, "_request_handler", None)):
        return "its _request_handler is not callable"
    return None


@functools.cache
def _file_response_problem() -> str | None:
    """Why a FileResponse lacks what the tunnel's way relies on; None if it has all of it.

    An int `_chunk_size` and a bool `_send_headers_immediately`; `_make_response`, which
    opens the file in the executor and returns (result, file or None, stat, encoding); and
    `_sendfile_fallback(writer, file, offset, count)`, which copies it.
    """
    response = web.FileResponse
    return (
        attribute_problem(response(os.devnull), "_chunk_size", int)
        or attribute_problem(response, "_send_headers_immediately", bool)
        or method_problem(response, "_make_response", "(self, request, accept_encoding)")
        or method_problem(
            response, "_sendfile_fallback", "(self, writer, fobj, offset, count)", coroutine=True
        )
    )


class _ReadWithOpening:
    """Reads a response's file whole in the executor job that opens it, when it is small.

    aiohttp opens the file in one executor job and reads each chunk in another; for a file
    that fits in one chunk, the read joins the opening, and the copy sends what was read.
    Anything else (a larger file, one that changed size meanwhile, a part of a file) is read
    and sent as aiohttp does.
    """

    def __init__(self, response: web.FileResponse, at_most: int) -> None:
        self._at_most = at_most
        self._content: bytes | None = None
        self._open: OpenFile = response._make_response
        self._copy: CopyFile = response._sendfile_fallback
        # aiohttp looks both up on the response when it calls them.
        response._make_response = self._open_and_read  # type: ignore[method-assign,assignment]
        response._sendfile_fallback = self._send_read  # type: ignore[method-assign]

    def _open_and_read(self, request: web.BaseRequest, accept_encoding: str) -> FileOpening:
        """The file opened as aiohttp opens it (in the executor), and read if it fits."""
        opening = self._open(request, accept_encoding)
        _, file, stat, _ = opening
        if file is not None and stat.st_size <= self._at_most:
            try:
                content = file.read(stat.st_size)
            except OSError:
                # Not the opening's error: aiohttp's own copy reads again and fails as it would.
                return opening
            # Shorter: the file was cut meanwhile; aiohttp's own copy says so as it does.
            self._content = content if len(content) == stat.st_size else None
        return opening

    async def _send_read(
        self, writer: AbstractStreamWriter, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        """The content read with the opening if it is what is asked for, else aiohttp's copy."""
        content, self._content = self._content, None
        if content is None or offset != 0 or count != len(content):
            return await self._copy(writer, fobj, offset, count)
        await writer.write(content)
        await writer.drain()
        return writer


REQUEST_BOUNDS = "The bounds on each request's head and on the wait between requests"


def bound_requests(
    protocol: asyncio.BaseProtocol,
    limits: ConnectionLimits,
    request_parsed: Callable[[], None],
    head_too_large: Callable[[], None],
) -> Callable[[], bool] | None:
    """Bound each request head `protocol` (aiohttp's, for one connection) reads, and its waits.

    aiohttp 3.13.3 bounds each header line but not their number, and keeps a connection that
    sends nothing for an hour. Here aiohttp's own parser tells where each request's head
    begins and ends: `request_parsed()` is called for every request it parsed, and
    `head_too_large()` once a head grows beyond the limits (nothing more is parsed after it).
    Between requests aiohttp waits at most `limits.idle_timeout`. Returns what tells whether
    the connection waits for a request (idle, or a head under way), or None with another
    aiohttp, where neither is done.
    """
    problem = _request_handler_problem(protocol) or _request_bounds_problem(protocol)
    if problem is not None:
        report_off(REQUEST_BOUNDS, problem, library=f"aiohttp {aiohttp.__version__}")
        return None
    handler = cast(web.RequestHandler, protocol)  # checked above
    # Read by aiohttp's request loop when it starts, as the connection is made.
    handler._keepalive_timeout = limits.idle_timeout
    handler._request_parser = _HeadBoundParser(  # type: ignore[assignment]
        cast(_Parser, handler._request_parser), limits, request_parsed, head_too_large
    )
    return functools.partial(_waits_for_request, handler)


def _request_bounds_problem(protocol: asyncio.BaseProtocol) -> str | None:
    """Why aiohttp's RequestHandler lacks what bound_requests relies on; None if it has all.

    A numeric `_keepalive_timeout`, an int `_request_count`, a `_waiter` (None or a future)
    and a `_request_parser` with feed_data(data) -> (messages, upgraded, tail): the C parser's
    signature is `(self, data)`, the Python one's has more parameters with defaults.
    """
    parser = getattr(protocol, "_request_parser", None)
    return (
        attribute_problem(protocol, "_keepalive_timeout", numbers.Real)
        or attribute_problem(protocol, "_request_count", int)
        or (None if hasattr(protocol, "_waiter") else "it has no _waiter")
        or (None if callable(getattr(parser, "feed_data", None)) else "its parser has no feed_data")
    )


def _waits_for_request(handler: web.RequestHandler) -> bool:
    """Whether aiohttp waits for a request on this connection: none yet, or the next one.

    `_waiter` is what aiohttp's request loop awaits between requests; it is None while a
    request is handled, a response sent or a websocket open.
    """
    waiter = handler._waiter
    return handler._request_count == 0 or (waiter is not None and not waiter.done())


type _Parsed = tuple[list[tuple[object, StreamReader]], bool, bytes]


class _Parser(Protocol):
    """What aiohttp's request parser does for a connection (its C and Python ones alike)."""

    def feed_data(self, data: bytes) -> _Parsed:
        """The requests whose heads `data` completed, whether one upgraded, what followed."""


class _HeadBoundParser:
    """aiohttp's request parser for one connection, with each request's head bounded.

    A head is what comes while no request body is under way, until the parser returns the
    request: counted in bytes and lines, and fed to the parser no further than one byte or
    line beyond the limits, so that it never holds more. A body goes whole, uncounted (large
    uploads are not heads): the start of a head that comes in the same piece as the end of the
    previous body is not counted either (a piece is one SSH packet, 32 KiB at most). After an
    upgrade (a websocket) aiohttp parses no more heads.
    """

    def __init__(
        self,
        parser: _Parser,
        limits: ConnectionLimits,
        request_parsed: Callable[[], None],
        head_too_large: Callable[[], None],
    ) -> None:
        self._parser = parser
        self._max_bytes = limits.request_head_bytes
        self._max_lines = limits.request_head_lines
        self._request_parsed = request_parsed
        self._head_too_large = head_too_large
        # The last request's payload, which tells when its body is complete.
        self._body: StreamReader | None = None
        self._head_bytes = 0
        self._head_lines = 0
        self._over = False

    def feed_data(self, data: bytes) -> _Parsed:
        """What aiohttp's parser returns for `data`: (requests, upgraded, tail)."""
        requests: list[tuple[object, StreamReader]] = []
        upgraded, tail = False, b""
        while data and not self._over and not upgraded:
            piece, data = self._split(data)
            parsed, upgraded, tail = self._parser.feed_data(piece)
            if parsed:
                requests.extend(parsed)
                self._body = parsed[-1][1]
                self._head_bytes = self._head_lines = 0
                self._request_parsed()
            elif self._head_bytes > self._max_bytes or self._head_lines > self._max_lines:
                self._over = True
                self._head_too_large()
        return requests, upgraded, tail + data if upgraded else tail

    def _split(self, data: bytes) -> tuple[bytes, bytes]:
        """The part of `data` to parse now (counted if it is a head's), and the rest.

        A head's part ends where it may end (a blank line), so that what follows a request's
        head is counted as what it is; or one byte or line beyond the limits.
        """
        if self._body is not None and not self._body.is_eof():
            return data, b""
        end = min(_blank_line_end(data), self._max_bytes - self._head_bytes + 1)
        lines = data.count(b"\n", 0, end)
        if self._head_lines + lines > self._max_lines:
            lines = self._max_lines - self._head_lines + 1
            end = _line_end(data, lines)
        self._head_bytes += end
        self._head_lines += lines
        return data[:end], data[end:]

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - whatever the parser has
        """The rest of the parser's API (set_upgraded, feed_eof) as the parser has it."""
        return getattr(self._parser, name)


def _blank_line_end(data: bytes) -> int:
    """Where the first blank line in `data` ends (where a head may end), else its length.

    A blank line begun in the previous piece ends at this one's first line end.
    """
    if data.startswith(b"\n"):
        return 1
    if data.startswith(b"\r\n"):
        return 2
    ends = [found + 3 for found in [data.find(b"\n\r\n")] if found >= 0]
    ends += [found + 2 for found in [data.find(b"\n\n")] if found >= 0]
    return min(ends, default=len(data))


def _line_end(data: bytes, count: int) -> int:
    """Where the `count`th line of `data` ends (`data` has that many)."""
    end = -1
    for _ in range(count):
        end = data.index(b"\n", end + 1)
    return end + 1
