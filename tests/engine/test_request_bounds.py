"""Each request's head bounded through aiohttp's own parser (aiohttp_internals.bound_requests).

These feed a real aiohttp RequestHandler as its connection would; the same bounds through the
tunnel, with a real SSH server and Home Assistant, are in test_request_bounds_tunnel.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from custom_components.ssh_callhome.engine import aiohttp_internals, private_api
from custom_components.ssh_callhome.engine.limits import (
    REQUEST_HEAD_BYTES,
    REQUEST_HEAD_LINES,
    ConnectionLimits,
)
from harness.aiohttp_parsers import RecordingParser, recorded, request_handler

LIMITS = ConnectionLimits(idle_timeout=5.0)
NO_EVENTS = aiohttp_internals.RequestEvents(print, print, print, print)
REQUEST_LINE = b"POST /api/webhook/x HTTP/1.1\r\n"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PIECE = 32 * 1024  # at most what one SSH packet brings
# Home Assistant's longest header line (MAX_LINE_SIZE): one must fit.
LONGEST_LINE = 24570


@dataclass
class Connection:
    """An aiohttp RequestHandler with its requests bounded, fed as its connection would."""

    handler: web.RequestHandler
    parser: RecordingParser
    watch: aiohttp_internals.RequestWatch
    parsed: list[None] = field(default_factory=list)
    too_large: list[None] = field(default_factory=list)
    too_much_ahead: list[None] = field(default_factory=list)
    body: list[int] = field(default_factory=list)  # what each body piece brought its payload

    def send(self, data: bytes) -> None:
        for start in range(0, len(data), PIECE):
            self.handler.data_received(data[start : start + PIECE])

    @property
    def requests(self) -> int:
        """Requests aiohttp parsed and queued (no request loop runs here)."""
        return len(self.handler._messages)


async def handler_for(server: web.Server, python_parser: bool = False) -> Connection:
    """A connection's handler, with aiohttp's C parser (as installed) or its Python one."""
    handler = request_handler(server, python_parser)
    parser = recorded(handler)
    parsed: list[None] = []
    too_large: list[None] = []
    too_much_ahead: list[None] = []
    body: list[int] = []
    events = aiohttp_internals.RequestEvents(
        lambda: parsed.append(None),
        lambda: too_large.append(None),
        lambda: too_much_ahead.append(None),
        body.append,
    )
    watch = aiohttp_internals.bound_requests(handler, LIMITS, events)
    assert watch is not None
    return Connection(handler, parser, watch, parsed, too_large, too_much_ahead, body)


@pytest.fixture
async def server() -> web.Server:
    async def answer(_request: web.BaseRequest) -> web.Response:
        return web.Response()

    return web.Server(answer)


async def test_what_the_reach_relies_on_is_there(server: web.Server) -> None:
    handler = server()
    assert aiohttp_internals._request_handler_problem(handler) is None
    assert aiohttp_internals._request_bounds_problem(handler) is None
    assert handler._keepalive_timeout == 3630  # aiohttp's hour
    parser = handler._request_parser
    assert parser is not None
    # A request's payload tells when its body is complete; one without a body is complete.
    messages, upgraded, tail = parser.feed_data(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nx")
    assert (len(messages), upgraded, tail) == (1, False, b"")
    payload = messages[0][1]
    assert not payload.is_eof()
    parser.feed_data(b"y")
    assert payload.is_eof()
    messages, *_ = parser.feed_data(GET)
    assert messages[0][1].is_eof()


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_a_header_flood_is_cut_at_the_bound_in_lines(
    server: web.Server, python_parser: bool
) -> None:
    connection = await handler_for(server, python_parser)
    connection.send(REQUEST_LINE + b"X-A: b\r\n" * 10_000)
    assert connection.too_large == [None]
    assert connection.parsed == []
    # The parser saw one line beyond the bound and no more; later data goes nowhere.
    assert connection.parser.fed == len(REQUEST_LINE) + REQUEST_HEAD_LINES * len(b"X-A: b\r\n")
    connection.send(b"X-A: b\r\n" * 100 + b"\r\n")
    assert connection.parser.fed == len(REQUEST_LINE) + REQUEST_HEAD_LINES * len(b"X-A: b\r\n")
    assert connection.requests == 0


async def test_a_head_of_long_lines_is_cut_at_the_bound_in_bytes(server: web.Server) -> None:
    connection = await handler_for(server)
    line = b"X-Long: " + b"a" * 8000 + b"\r\n"
    connection.send(REQUEST_LINE + line * 10)
    assert connection.too_large == [None]
    assert connection.parser.fed == REQUEST_HEAD_BYTES + 1


async def test_a_head_within_the_bounds_is_parsed(server: web.Server) -> None:
    connection = await handler_for(server)
    many = REQUEST_LINE + b"X-A: b\r\n" * (REQUEST_HEAD_LINES - 2) + b"\r\n"
    longest = REQUEST_LINE + b"Cookie: " + b"c" * (LONGEST_LINE - 10) + b"\r\n\r\n"
    connection.send(many)
    connection.send(longest)
    assert (connection.requests, connection.too_large) == (2, [])


async def test_a_later_request_on_the_connection_is_bounded_too(server: web.Server) -> None:
    connection = await handler_for(server)
    connection.send(GET)
    assert connection.parsed == [None]
    connection.send(REQUEST_LINE + b"X-A: b\r\n" * 10_000)
    assert connection.too_large == [None]
    assert connection.requests == 1


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_bodies_do_not_count_and_the_head_after_one_does(
    server: web.Server, python_parser: bool
) -> None:
    connection = await handler_for(server, python_parser)
    body = b"\n" * (4 * 1024 * 1024)  # a body of nothing but line ends: not a head's lines
    connection.send(b"POST /up HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    chunked = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (PIECE, b"\n" * PIECE) for _ in range(8)) + b"0\r\n\r\n"
    connection.send(chunked)
    assert (connection.requests, connection.too_large) == (2, [])
    connection.send(GET * 3)  # pipelined, in one piece
    assert (connection.requests, connection.too_large) == (5, [])
    connection.send(REQUEST_LINE + b"X-A: b\r\n" * 10_000)
    assert connection.too_large == [None]


async def test_a_blank_line_is_no_request(server: web.Server) -> None:
    connection = await handler_for(server)
    connection.send(b"\r\n\r\n")
    assert connection.parsed == []
    assert connection.watch.waits_for_request()
    connection.send(b"\r\n" * REQUEST_HEAD_LINES)  # nor are many
    assert connection.too_large == [None]


async def test_a_head_split_anywhere_is_parsed_once(server: web.Server) -> None:
    for split in range(1, len(GET)):
        connection = await handler_for(server)
        connection.send(GET[:split])
        connection.send(GET[split:] + GET)
        assert (connection.requests, connection.parsed, connection.too_large) == (2, [None] * 2, [])


async def test_after_an_upgrade_no_head_is_parsed(server: web.Server) -> None:
    connection = await handler_for(server)
    upgrade = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    frames = b"X-A: b\r\n" * 10_000  # what follows is the websocket's, not a head
    messages, upgraded, tail = connection.handler._request_parser.feed_data(upgrade + frames)  # type: ignore[union-attr]
    assert (len(messages), upgraded, tail) == (1, True, frames)
    assert connection.too_large == []


async def test_the_idle_bound_replaces_aiohttps_hour(server: web.Server) -> None:
    connection = await handler_for(server)
    assert connection.handler._keepalive_timeout == LIMITS.idle_timeout


async def test_with_another_aiohttp_nothing_is_bounded_and_one_warning_says_so(
    server: web.Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    handlers = [server(), server()]
    monkeypatch.delattr(web.RequestHandler, "_waiter")  # as in an aiohttp without it
    for handler in handlers:  # one warning, however many connections
        assert aiohttp_internals.bound_requests(handler, LIMITS, NO_EVENTS) is None
    monkeypatch.undo()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{aiohttp_internals.REQUEST_BOUNDS} turned off: aiohttp {aiohttp.__version__} is not "
        "as expected (it has no _waiter)"
    ]
    assert handlers[0]._keepalive_timeout == 3630


async def test_waiting_for_a_request_is_aiohttps_own_state(server: web.Server) -> None:
    connection = await handler_for(server)
    assert connection.watch.waits_for_request()  # nothing parsed yet
    connection.send(GET)
    assert not connection.watch.waits_for_request()  # parsed, about to be handled
    loop = asyncio.get_running_loop()
    connection.handler._waiter = loop.create_future()  # what aiohttp awaits between requests
    assert connection.watch.waits_for_request()


CHUNKED_UPLOAD = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\n\n\n\r\n"
LINES_UNCOUNTED_BEFORE = 4000  # about what fits in one piece after a body's end


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("complete", [False, True], ids=["partial head", "complete head"])
async def test_a_head_after_a_chunked_body_in_the_same_piece_is_counted(
    server: web.Server, python_parser: bool, complete: bool
) -> None:
    connection = await handler_for(server, python_parser)
    connection.send(CHUNKED_UPLOAD)
    piece = b"0\r\n\r\n" + REQUEST_LINE + b"X-A: b\r\n" * LINES_UNCOUNTED_BEFORE
    connection.send(piece + (b"\r\n" if complete else b""))
    connection.send(b"X-A: b\r\n" * 100 + b"\r\n")
    assert connection.too_large == [None]
    assert connection.requests == 1  # the upload only


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_a_head_after_a_body_within_the_bounds_is_parsed_however_the_pieces_fall(
    server: web.Server, python_parser: bool
) -> None:
    """The part of a piece after a body's end is counted as the head it is, no more."""
    head = REQUEST_LINE + b"X-A: b\r\n" * (REQUEST_HEAD_LINES - 2) + b"\r\n"
    body = b"\r\n" * 30_000  # a body of blank lines: none of them a head's
    with_length = b"POST /up HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    chunked = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    for upload in (with_length, chunked):
        for split in (len(upload) - 1, len(upload), len(upload) + len(head) // 2):
            connection = await handler_for(server, python_parser)
            stream = upload + head + GET
            connection.handler.data_received(stream[:split])
            connection.handler.data_received(stream[split:])
            assert (connection.requests, connection.too_large) == (3, []), split


async def test_queued_requests_are_bounded_as_they_are_parsed(server: web.Server) -> None:
    """However the pieces come (TLS hands aiohttp what it held at once), none beyond the bound."""
    connection = await handler_for(server)
    connection.send(GET * aiohttp_internals.MAX_QUEUED_REQUESTS)
    assert connection.too_much_ahead == []
    connection.handler.data_received(GET * 2000)  # one piece, as TLS hands it over
    assert connection.too_much_ahead == [None]
    assert connection.requests == aiohttp_internals.MAX_QUEUED_REQUESTS


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_errors_queued_in_place_of_requests_are_bounded_too(
    server: web.Server, python_parser: bool
) -> None:
    """aiohttp queues an error answer for each piece its parser refuses (400)."""
    connection = await handler_for(server, python_parser)
    for _ in range(aiohttp_internals.MAX_QUEUED_REQUESTS * 2):
        connection.handler.data_received(b"\x01\r\n\r\n")
    print(f"{python_parser=}: {connection.requests} queued, told {connection.too_much_ahead}")
    assert connection.too_much_ahead == [None]
    assert connection.requests == aiohttp_internals.MAX_QUEUED_REQUESTS


async def test_an_upgrades_tail_is_told(server: web.Server) -> None:
    upgrading = await handler_for(server)
    upgrading.send(b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    upgrading.send(b"x" * aiohttp_internals.MAX_UPGRADE_TAIL)
    assert not upgrading.watch.holds_too_much()
    upgrading.send(b"x")
    assert upgrading.watch.holds_too_much()


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_a_body_tells_what_reached_its_payload_not_a_chunks_extension(
    server: web.Server, python_parser: bool
) -> None:
    connection = await handler_for(server, python_parser)
    connection.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    connection.send(b"3;" + b"a" * 500)  # an extension aiohttp skips: no body byte
    connection.send(b"a" * 500 + b"\r\nxyz\r\n")
    print(f"chunked, {python_parser=}: body pieces brought {connection.body}")
    assert connection.body == [0, 3]
    with_length = await handler_for(server, python_parser)
    with_length.send(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
    with_length.send(b"ab")
    with_length.send(b"cde")
    assert with_length.body == [2, 3]


async def test_a_request_under_way_is_neither_a_wait_nor_a_websocket(server: web.Server) -> None:
    connection = await handler_for(server)
    assert not connection.watch.request_under_way()  # waiting for the first request
    connection.send(GET)
    assert connection.watch.request_under_way()
    connection.handler._payload_parser = object()  # what a websocket sets for as long as it is open
    assert not connection.watch.request_under_way()


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_a_large_chunked_upload_is_not_searched_for_blank_lines(
    server: web.Server, python_parser: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its chunks are followed (chunked_body.py): only the pieces after its last chunk began."""
    searched: list[int] = []
    search = aiohttp_internals._last_blank_line_end

    def counted_search(data: bytes) -> int:
        searched.append(len(data))
        return search(data)

    monkeypatch.setattr(aiohttp_internals, "_last_blank_line_end", counted_search)
    connection = await handler_for(server, python_parser)
    block = b"\r\n" * (512 * 1024)  # 1 MiB of blank lines, none of them a head's
    upload = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    connection.send(upload + b"%x\r\n%s\r\n" % (len(block), block) * 4 + b"0\r\n\r\n" + GET)
    print(f"{python_parser=}: {len(searched)} pieces searched, {sum(searched)} bytes")
    assert (connection.requests, connection.too_large) == (2, [])
    assert sum(searched) <= PIECE
