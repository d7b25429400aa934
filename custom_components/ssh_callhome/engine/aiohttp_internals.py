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
import re
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass
from typing import IO, Any, Protocol, cast

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.streams import StreamReader

from .channels import ProtocolFactory
from .chunked_body import ChunkedBody, FramingRefused, TrailerBounds
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
    not (nor, behind the tunnel's TLS, its TLS transport: asyncio_internals.py): one executor
    round trip per chunk, 256 KiB unless the response says otherwise; these
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
        if isinstance(response, web.FileResponse) and _copied_by_aiohttp(request.transport):
            response._chunk_size = max(response._chunk_size, chunk_size)
            response._send_headers_immediately = False  # sent with the first chunk, or at EOF
            if request.method == hdrs.METH_GET and hdrs.RANGE not in request.headers:
                _ReadWithOpening(response, response._chunk_size)
        return response

    # aiohttp looks the handler up on the connection's protocol for each request.
    protocol._request_handler = handle_for_the_tunnel  # type: ignore[attr-defined]


def _copied_by_aiohttp(transport: asyncio.BaseTransport | None) -> bool:
    """Whether aiohttp copies a file itself on `transport`: loop.sendfile() finds it has none.

    Where asyncio's own sendfile copies it (TLS where asyncio_internals could not give its
    transport the tunnel's way), the file goes past aiohttp's writer: headers held back for a
    first chunk would go after the file.
    """
    try:
        getattr(transport, "_sendfile_compatible", None)
    except NotImplementedError:
        return True
    return False


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


# What is read of a larger file in the executor job that opens it, and sent at once with the
# headers: its first bytes go out after that one job, instead of after a whole chunk (1 MiB,
# 0.5-1 ms to read and to seal into 32 SSH packets), while the next chunk is being read.
# Two SSH packets.
FIRST_PIECE = 64 * 1024


class _ReadWithOpening:
    """Reads the start of a response's file in the executor job that opens it.

    aiohttp opens the file in one executor job and reads each chunk in another. A file that fits
    in one chunk is read whole with the opening, and the copy sends what was read; of a larger
    one, the first FIRST_PIECE bytes are, and aiohttp copies the rest. Anything else (a file
    that changed size meanwhile, a part of a file) is read and sent as aiohttp does.
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
        """The file opened as aiohttp opens it (in the executor), and its start read."""
        opening = self._open(request, accept_encoding)
        _, file, stat, _ = opening
        if file is not None:
            wanted = stat.st_size if stat.st_size <= self._at_most else FIRST_PIECE
            try:
                content = file.read(wanted)
            except OSError:
                # Not the opening's error: aiohttp's own copy reads again and fails as it would.
                return opening
            # Shorter: the file was cut meanwhile; aiohttp's own copy says so as it does.
            self._content = content if len(content) == wanted else None
        return opening

    async def _send_read(
        self, writer: AbstractStreamWriter, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        """What was read with the opening, if it begins what is asked for; aiohttp copies the rest.

        aiohttp's copy seeks to where it begins, wherever the read left the file.
        """
        content, self._content = self._content, None
        if content is None or offset != 0 or len(content) > count:
            return await self._copy(writer, fobj, offset, count)
        await writer.write(content)
        if len(content) < count:
            return await self._copy(writer, fobj, len(content), count - len(content))
        await writer.drain()
        return writer


REQUEST_BOUNDS = "The bounds on each request's head and on the wait between requests"
# Requests parsed and waiting for their turn on one connection. Browsers do not pipeline; a
# client that does sends a few ahead of the answers. aiohttp 3.13.3 queues every request a
# visitor sends while it leaves the answers unread (+841 MiB of Home Assistant's for 48 MiB).
MAX_QUEUED_REQUESTS = 16
# What may wait after a request that asked for an upgrade, before the websocket takes it over:
# a websocket client waits for the 101 answer before it sends. aiohttp 3.13.3 keeps all of it
# in one bytes object, copied whole for each piece (+303 MiB for 48 MiB). Two SSH packets.
MAX_UPGRADE_TAIL = 64 * 1024


@dataclass(frozen=True, slots=True)
class RequestEvents:
    """What a connection's bounded parser tells as it parses (see bound_requests)."""

    # A request was parsed (its head is complete).
    request_parsed: Callable[[], None]
    # A head (or a chunked body's trailer or size line) grew beyond the limits, or a chunked
    # body's framing is not the plain form: nothing more is parsed.
    head_too_large: Callable[[], None]
    # One more request would be queued beyond MAX_QUEUED_REQUESTS: nothing more is parsed.
    too_much_ahead: Callable[[], None]
    # This many bytes of a request's body reached its payload (what its handler can read).
    body_received: Callable[[int], None]


def bound_requests(
    protocol: asyncio.BaseProtocol, limits: ConnectionLimits, events: RequestEvents
) -> RequestWatch | None:
    """Bound each request head `protocol` (aiohttp's, for one connection) reads, and its waits.

    aiohttp 3.13.3 bounds each header line but not their number, nor the requests it queues,
    and keeps a connection that sends nothing for an hour. Here aiohttp's own parser tells
    where each request's head begins and ends, and what of a body reached its payload; it is
    the one place every byte passes, TLS included (asyncio's TLS protocol may hand aiohttp
    256 KiB at once from aiohttp's own resume_reading). `events` hears of it. Between
    requests aiohttp waits at most `limits.idle_timeout`. Returns what tells the connection's
    state, or None with another aiohttp, where none of this is done.
    """
    problem = _request_handler_problem(protocol) or _request_bounds_problem(protocol)
    if problem is not None:
        report_off(REQUEST_BOUNDS, problem, library=f"aiohttp {aiohttp.__version__}")
        return None
    handler = cast(web.RequestHandler, protocol)  # checked above
    # Read by aiohttp's request loop when it starts, as the connection is made.
    handler._keepalive_timeout = limits.idle_timeout
    parser = _HeadBoundParser(
        cast(_Parser, handler._request_parser), limits, events, handler._messages
    )
    handler._request_parser = parser  # type: ignore[assignment]
    return RequestWatch(handler, parser)


def _request_bounds_problem(protocol: asyncio.BaseProtocol) -> str | None:
    """Why aiohttp's RequestHandler lacks what bound_requests relies on; None if it has all.

    A numeric `_keepalive_timeout`, an int `_request_count`, a `_waiter` (None or a future),
    a `_payload_parser` (None until a websocket sets its own), the queue `_messages`, the bytes
    `_message_tail`, and a `_request_parser` with feed_data(data) -> (messages, upgraded,
    tail): the C parser's signature is `(self, data)`, the Python one's has more parameters
    with defaults.
    """
    parser = getattr(protocol, "_request_parser", None)
    return (
        attribute_problem(protocol, "_keepalive_timeout", numbers.Real)
        or attribute_problem(protocol, "_request_count", int)
        or attribute_problem(protocol, "_messages", Sized)
        or attribute_problem(protocol, "_message_tail", bytes)
        or (None if hasattr(protocol, "_waiter") else "it has no _waiter")
        or (None if hasattr(protocol, "_payload_parser") else "it has no _payload_parser")
        or (None if callable(getattr(parser, "feed_data", None)) else "its parser has no feed_data")
    )


class RequestWatch:
    """What aiohttp's own state tells of one connection (as bound_requests found it)."""

    __slots__ = ("_handler", "_parser")

    def __init__(self, handler: web.RequestHandler, parser: _HeadBoundParser) -> None:
        self._handler = handler
        self._parser = parser

    def waits_for_request(self) -> bool:
        """Whether aiohttp waits for a request on this connection: none yet, or the next one.

        `_waiter` is what aiohttp's request loop awaits between requests; it is None while a
        request is handled, a response sent or a websocket open.
        """
        waiter = self._handler._waiter
        return self._handler._request_count == 0 or (waiter is not None and not waiter.done())

    def request_under_way(self) -> bool:
        """Whether a request or its response is under way: not waiting, not a websocket.

        A websocket has a parser of its own (`_payload_parser`) for as long as it is open.
        """
        return not self.waits_for_request() and self._handler._payload_parser is None

    def body_under_way(self) -> bool:
        """Whether the last request parsed still has body to come from the visitor."""
        return self._parser.body_under_way()

    def holds_too_much(self) -> bool:
        """Whether more waits after an upgrade than a client sends ahead.

        aiohttp keeps it without parsing: it never passes the parser, where the requests
        queued are bounded.
        """
        return len(self._handler._message_tail) > MAX_UPGRADE_TAIL


# What may come before a request's line: llhttp skips any CR and LF there (aiohttp's Python
# parser only CRLF pairs, and refuses the rest).
_BEFORE_A_REQUEST = re.compile(rb"[\r\n]+")

type _Parsed = tuple[list[tuple[object, StreamReader]], bool, bytes]


class _Parser(Protocol):
    """What aiohttp's request parser does for a connection (its C and Python ones alike)."""

    def feed_data(self, data: bytes) -> _Parsed:
        """The requests whose heads `data` completed, whether one upgraded, what followed."""


class _HeadBoundParser:
    """aiohttp's request parser for one connection, with each request's head bounded.

    A head is what comes while no request body is under way, until the parser returns the
    request: counted in bytes and lines, and fed to the parser no further than one byte or
    line beyond the limits, so that it never holds more. A body goes uncounted (large uploads
    are not heads), and ends where its length says, or where its chunks followed say
    (chunked_body.py, which bounds a chunked body's size lines and trailer as a head is, and
    refuses framing not in the plain form); what follows is the next head. A request parsed
    with more header lines than the bound is too large as well. After an upgrade (a
    websocket) aiohttp parses no more heads. A request that would make more than
    MAX_QUEUED_REQUESTS wait in `queue` (aiohttp's, which it fills with what this returns) is
    not passed on. What a body piece brings to the body's payload is told, so that bytes the
    parser skips (a chunk's extension) are not taken for a body's.
    """

    def __init__(
        self, parser: _Parser, limits: ConnectionLimits, events: RequestEvents, queue: Sized
    ) -> None:
        self._parser = parser
        self._max_bytes = limits.request_head_bytes
        self._max_lines = limits.request_head_lines
        self._trailer_bounds = TrailerBounds(self._max_bytes, self._max_lines)
        self._events = events
        self._queue = queue
        # The last request's payload, which tells when its body is complete.
        self._body: StreamReader | None = None
        # What is left of that body when its length is known (None: chunked, or unknown).
        self._body_left: int | None = None
        # That body's chunks when it is chunked and followed from its first byte.
        self._chunks: ChunkedBody | None = None
        self._head_bytes = 0
        self._head_lines = 0
        # Whether all of the head counted so far is CR and LF: what comes before a request.
        self._before_request = True
        self._over = False

    def feed_data(self, data: bytes) -> _Parsed:
        """What aiohttp's parser returns for `data`: (requests, upgraded, tail)."""
        requests: list[tuple[object, StreamReader]] = []
        upgraded, tail = False, b""
        while data and not self._over and not upgraded:
            in_body = self.body_under_way()
            try:
                piece, data = self._body_split(data) if in_body else self._head_split(data)
            except FramingRefused:
                self._stop(self._events.head_too_large)
                break
            body, body_before = self._body, _received(self._body)
            parsed, upgraded, tail = self._parse(piece, ahead=len(requests))
            if in_body:
                self._events.body_received(_body_delivered(body, body_before, piece))
            if any(self._too_many_lines(message) for message, _ in parsed):
                parsed = []  # never handled: the connection is closed
                self._head_lines = self._max_lines + 1
            if self._queue_full(len(requests) + len(parsed)):
                self._stop(self._events.too_much_ahead)
                break  # what was parsed is never handled: the connection is closed
            if parsed:
                requests.extend(parsed)
                self._started(parsed[-1], after_its_head=not in_body)
                self._events.request_parsed()
            if in_body and self._body_end_unknown() and (parsed or self._body_is_complete()):
                # The body ended somewhere in this piece: a head may have begun after it.
                self._count(piece[_last_blank_line_end(piece) :])
            if self._head_bytes > self._max_bytes or self._head_lines > self._max_lines:
                self._stop(self._events.head_too_large)
        return requests, upgraded, tail + data if upgraded else tail

    def _parse(self, piece: bytes, ahead: int) -> _Parsed:
        """What aiohttp's parser returns for `piece`, with `ahead` requests parsed before it.

        For a piece it cannot parse, aiohttp queues an error (answered 400) in the requests'
        place: one per piece, which would fill its queue past the bound as well while an
        answer is under way.
        """
        try:
            return self._parser.feed_data(piece)
        except Exception:
            if not self._queue_full(ahead + 1):
                raise
            self._stop(self._events.too_much_ahead)
            return [], False, b""

    def _queue_full(self, more: int) -> bool:
        """Whether `more` requests would queue more than MAX_QUEUED_REQUESTS in aiohttp's."""
        return len(self._queue) + more > MAX_QUEUED_REQUESTS

    def _stop(self, tell: Callable[[], None]) -> None:
        """Parse nothing more on this connection, and `tell` why (it closes the connection)."""
        self._over = True
        tell()

    def _started(self, request: tuple[object, StreamReader], after_its_head: bool) -> None:
        """A request was parsed: its body comes next, and a new head is counted after it.

        Its body's length is known only if its head ended the piece (a head's piece ends at
        its blank line); one parsed within a body's piece may have had part of it already.
        """
        message, self._body = request
        self._body_left = _content_length(message) if after_its_head else None
        self._before_request = True
        chunked = after_its_head and getattr(message, "chunked", False) is True
        self._chunks = ChunkedBody(self._trailer_bounds) if chunked else None
        self._head_bytes = self._head_lines = 0

    def body_under_way(self) -> bool:
        """Whether the last request parsed has a body that has not ended yet.

        Ended where its length or its chunks followed say, or once its payload failed, whatever
        else the payload says: aiohttp's Python parser, once it refused a body's content (not
        the gzip its head announced), parses what follows as heads while the payload, which it
        gave the error, never ends. (Its C parser parses nothing more then, and answers 400;
        what follows is counted as a head all the same, and closes the connection past the
        bound.)
        """
        if self._body is None or self._body.is_eof() or self._body.exception() is not None:
            return False
        return not (self._body_left == 0 or (self._chunks is not None and self._chunks.ended))

    def _body_end_unknown(self) -> bool:
        """Whether neither a length nor followed chunks tell where the body ends."""
        return self._body_left is None and self._chunks is None

    def _body_is_complete(self) -> bool:
        return self._body is not None and self._body.is_eof()

    def _too_many_lines(self, message: object) -> bool:
        """Whether a request parsed has more header lines than the bound allows.

        Its head came after a body's end in the same piece, uncounted.
        """
        # Besides the request line and the blank line.
        return len(getattr(message, "headers", ())) > self._max_lines - 2

    def _count(self, head: bytes) -> None:
        self._head_bytes += len(head)
        self._head_lines += head.count(b"\n")

    def _body_split(self, data: bytes) -> tuple[bytes, bytes]:
        """The part of `data` the body under way may fill, and the rest.

        Up to its end where its length or its chunks followed say. Else, a defensive path:
        a request parsed within another's body part, which the exact ends make impossible with
        aiohttp 3.13 (a property test checks them against its parsers); its body is taken up to
        the last blank line of each piece, where a chunked body may end.
        """
        if self._body_left:
            end = min(self._body_left, len(data))
            self._body_left -= end
        elif self._chunks is not None:
            body_end = self._chunks.end_in(data)  # raises FramingRefused
            end = len(data) if body_end is None else body_end
        else:  # a request parsed within another's body piece: where its body ends is unknown
            end = _last_blank_line_end(data) or len(data)
        return data[:end], data[end:]

    def _head_split(self, data: bytes) -> tuple[bytes, bytes]:
        """The part of `data` to parse now (counted), and the rest.

        It ends where the head may end (a blank line), so that what follows a request's head
        is counted as what it is; or one byte or line beyond the limits. Blank lines before a
        head (CR and LF, which aiohttp skips) are one part however many, not one part each,
        however the pieces fall.
        """
        limit = self._max_bytes - self._head_bytes + 1
        before = _BEFORE_A_REQUEST.match(data, 0, limit) if self._before_request else None
        self._before_request = before is not None
        end = before.end() if before else min(_blank_line_end(data, limit), limit)
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


def _received(body: StreamReader | None) -> int | None:
    """What has reached a request's payload so far (its `total_bytes`); None if not told."""
    received = getattr(body, "total_bytes", None)
    return received if isinstance(received, int) else None


def _body_delivered(body: StreamReader | None, before: int | None, piece: bytes) -> int:
    """What of a body `piece` reached the payload `body`, which had `before` bytes.

    A chunked body's framing (sizes, extensions, trailer) is not in it. With another aiohttp,
    whose payload does not count, the whole piece, as the bytes on the channel were counted.
    """
    after = _received(body)
    return len(piece) if after is None or before is None else after - before


def _content_length(message: object) -> int | None:
    """The length of a request's body as its head says; None if chunked or not told."""
    if getattr(message, "chunked", True):
        return None
    try:
        return int(getattr(message, "headers", {}).get(hdrs.CONTENT_LENGTH, ""))
    except (AttributeError, ValueError):
        return None


def _blank_line_end(data: bytes, limit: int) -> int:
    """Where the first blank line in `data` ends (where a head may end), else its length.

    A blank line begun in the previous piece ends at this one's first line end. Searched only
    within `limit` bytes, as far as a head may go, and each pattern only as far as the other
    was found: a piece of many pipelined requests is not searched to its end for each.
    """
    if data.startswith(b"\n"):
        return 1
    if data.startswith(b"\r\n"):
        return 2
    crlf = data.find(b"\n\r\n", 0, limit)
    lf = data.find(b"\n\n", 0, limit if crlf < 0 else crlf + 2)
    ends = ([crlf + 3] if crlf >= 0 else []) + ([lf + 2] if lf >= 0 else [])
    return min(ends, default=len(data))


def _line_end(data: bytes, count: int) -> int:
    """Where the `count`th line of `data` ends (`data` has that many)."""
    end = -1
    for _ in range(count):
        end = data.index(b"\n", end + 1)
    return end + 1


def _last_blank_line_end(data: bytes) -> int:
    """Where the last blank line in `data` ends, begun in the previous piece too; 0 if none."""
    ends = [found + 3 for found in [data.rfind(b"\n\r\n")] if found >= 0]
    ends += [found + 2 for found in [data.rfind(b"\n\n")] if found >= 0]
    ends += [1] if data.startswith(b"\n") else [2] if data.startswith(b"\r\n") else []
    return max(ends, default=0)
