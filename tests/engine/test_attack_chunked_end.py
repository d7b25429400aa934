"""Attack, round 2: where the head bound says a request's body ends, against aiohttp's parsers.

The head bound (aiohttp_internals._HeadBoundParser) cuts a body's piece exactly where the body
ends (its Content-Length, or its chunks followed by chunked_body.ChunkedBody) and counts what
follows as the next head. Ended too late by the bound, a head reaches aiohttp's parser (C llhttp
or the Python one) uncounted; too soon, a real upload is counted as a head and cut. Here: bodies
with a length whatever the request says, pipelined requests of every kind split anywhere, a
refused upgrade whose held bytes aiohttp parses afterwards, and the uploads real clients send
(curl, Python's http.client, requests, httpx, aiohttp, nginx in front) to a bounded aiohttp
server on loopback.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import http.client
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests  # type: ignore[import-untyped]
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.ssh_callhome.engine import aiohttp_internals
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.aiohttp_parsers import answering_server, recorded, request_handler
from harness.bounded_parser import FLOOD, PIECE, bounded, outcome, pieces_of
from harness.network import LOOPBACK, wait_for_port
from harness.nginx import Nginx

# Body bytes that look like a chunked body's end and a request's head.
LOOKALIKE = b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n"
NEXT = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def with_length(request_line: bytes, headers: bytes, body: bytes, length: bytes = b"%d") -> bytes:
    head = request_line + b"Host: x\r\n" + headers + b"Content-Length: " + length % len(body)
    return head + b"\r\n\r\n" + body


REQUEST_LINES = {
    "POST": b"POST /up HTTP/1.1\r\n",
    "HTTP/1.0": b"POST /up HTTP/1.0\r\n",
    "HEAD": b"HEAD / HTTP/1.1\r\n",
    "GET": b"GET / HTTP/1.1\r\n",
    "OPTIONS *": b"OPTIONS * HTTP/1.1\r\n",
    "CONNECT": b"CONNECT x:443 HTTP/1.1\r\n",
    "DELETE": b"DELETE /x HTTP/1.1\r\n",
}
HEADERS = {
    "plain": b"",
    "Expect 100-continue": b"Expect: 100-continue\r\n",
    "websocket upgrade": b"Connection: Upgrade\r\nUpgrade: websocket\r\n",
    "upgrade in a list": b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n",
    "h2c upgrade": b"Connection: Upgrade\r\nUpgrade: h2c\r\n",
    "tcp upgrade": b"Connection: Upgrade\r\nUpgrade: tcp\r\n",
    "not gzip": b"Content-Encoding: gzip\r\n",
    "not deflate": b"Content-Encoding: deflate\r\n",
    "not br": b"Content-Encoding: br\r\n",
    "zstd": b"Content-Encoding: zstd\r\n",
    "unknown encoding": b"Content-Encoding: x-unknown\r\n",
    "keep-alive": b"Connection: keep-alive\r\n",
    "close": b"Connection: close\r\n",
    "length twice": b"Content-Length: %d\r\n" % len(LOOKALIKE),
}
# How a length is spelled: aiohttp's parsers and the bound (int()) must read the same.
LENGTHS = {
    "plain": b"%d",
    "leading zeros": b"000%d",
    "spaces around": b"  %d  ",
    "tab after": b"%d\t",
    "plus sign": b"+%d",
    "underscore": b"%d_0",
    "vertical tab after": b"%d\x0b",
    "two values": b"%d, 22",
    "folded": b"\r\n %d",
    "folded after": b"%d\r\n 0",
    "tab folded": b"%d\r\n\t",
}


def splits_of(stream: bytes, body_start: int) -> list[int]:
    """Every offset around a short body: where the pieces may fall."""
    return list(range(body_start - 2, len(stream) + 40))


def outcomes(python_parser: bool, stream: bytes, splits: list[int], requests: int = 1) -> set[str]:
    """The outcomes of `stream` cut in two at each of `splits`; none uncut."""
    seen = {outcome(python_parser, stream, [split], requests) for split in splits}
    assert "uncut" not in seen
    return seen


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("request_line", REQUEST_LINES.values(), ids=REQUEST_LINES.keys())
@pytest.mark.parametrize("headers", HEADERS.values(), ids=HEADERS.keys())
async def test_a_head_after_a_body_with_a_length_is_cut_whatever_the_request_says(
    python_parser: bool, request_line: bytes, headers: bytes
) -> None:
    stream = with_length(request_line, headers, LOOKALIKE)
    body_start = len(stream) - len(LOOKALIKE)
    print(outcomes(python_parser, stream, splits_of(stream, body_start)))


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("length", LENGTHS.values(), ids=LENGTHS.keys())
async def test_a_head_after_a_body_is_cut_however_its_length_is_spelled(
    python_parser: bool, length: bytes
) -> None:
    stream = with_length(REQUEST_LINES["POST"], b"", LOOKALIKE, length)
    body_start = len(stream) - len(LOOKALIKE)
    print(outcomes(python_parser, stream, splits_of(stream, body_start)))


def chunked(request_line: bytes, headers: bytes, body: bytes, trailer: bytes = b"") -> bytes:
    framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
    head = request_line + b"Host: x\r\n" + headers + b"Transfer-Encoding: chunked\r\n\r\n"
    return head + framed + b"0\r\n" + trailer + b"\r\n"


# Requests as clients send them: bodies with a length or chunked (plain framing), of bytes that
# look like framing and heads; methods that may have one; valid gzip.
body_bytes = st.binary(max_size=60) | st.lists(
    st.sampled_from([b"\r\n", b"\n", b"0", b"GET / HTTP/1.1", LOOKALIKE, b"X-A: b"]), max_size=8
).map(b"".join)
legit_lines = st.sampled_from(
    [REQUEST_LINES[name] for name in ("POST", "HTTP/1.0", "GET", "OPTIONS *", "DELETE")]
)
KEEP_ALIVE = b"Connection: keep-alive\r\n"
legit_headers = st.sampled_from([b"", b"Expect: 100-continue\r\n", KEEP_ALIVE, b"X-A: b\r\n" * 20])


@st.composite
def legit_requests(draw: st.DrawFn) -> bytes:
    line, headers, body = draw(legit_lines), draw(legit_headers), draw(body_bytes)
    kind = draw(st.sampled_from(["none", "length", "chunked", "gzip", "trailer"]))
    if line.endswith(b"1.0\r\n"):  # clients send HTTP/1.0 bodies with a length
        headers = KEEP_ALIVE + headers.replace(KEEP_ALIVE, b"")
        kind = "length" if kind != "none" else kind
    if kind == "none":
        return line + b"Host: x\r\n" + headers + b"\r\n"
    if kind == "length":
        return with_length(line, headers, body)
    if kind == "gzip":
        return with_length(line, headers + b"Content-Encoding: gzip\r\n", gzip.compress(body))
    trailer = b"X-Sum: 1\r\n" if kind == "trailer" else b""
    return chunked(line, headers, body, trailer)


# The bodies a hostile visitor adds: a length or chunks aiohttp may take otherwise.
hostile_requests = st.sampled_from(
    [
        with_length(REQUEST_LINES["HEAD"], b"", LOOKALIKE),
        with_length(REQUEST_LINES["CONNECT"], b"", LOOKALIKE),
        with_length(b"GET /ws HTTP/1.1\r\n", HEADERS["websocket upgrade"], LOOKALIKE),
        with_length(b"GET /ws HTTP/1.1\r\n", HEADERS["h2c upgrade"], LOOKALIKE),
        with_length(REQUEST_LINES["POST"], HEADERS["not gzip"], LOOKALIKE),
        chunked(REQUEST_LINES["HEAD"], b"", LOOKALIKE),
        chunked(REQUEST_LINES["POST"], HEADERS["not deflate"], LOOKALIKE),
        chunked(b"GET /ws HTTP/1.1\r\n", HEADERS["h2c upgrade"], LOOKALIKE),
        chunked(REQUEST_LINES["HTTP/1.0"], b"", LOOKALIKE),
        b"GET / HTTP/1.1\r\nHost: x\r\n" + HEADERS["h2c upgrade"] + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + HEADERS["tcp upgrade"] + b"\r\n",
    ]
)


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(legit_requests(), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
async def test_pipelined_requests_within_the_bounds_are_all_parsed_however_the_pieces_fall(
    python_parser: bool, stream: list[bytes], cuts: list[int]
) -> None:
    """No body is taken for a head (too soon): nothing is cut, every request is parsed."""
    connection = bounded(python_parser)
    for piece in pieces_of(b"".join(stream) + NEXT, cuts):
        connection.send(piece)
    assert (connection.too_large, connection.refused) == ([], False)
    assert len(connection.handler._messages) == len(stream) + 1


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(legit_requests() | hostile_requests, min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
async def test_a_head_after_pipelined_requests_is_cut_however_the_pieces_fall(
    python_parser: bool, stream: list[bytes], cuts: list[int]
) -> None:
    """No head is taken for a body (too late): where aiohttp ended them all, the flood is cut."""
    assert outcome(python_parser, b"".join(stream), cuts, requests=len(stream)) != "uncut"


@dataclass
class BoundedServer:
    """A real aiohttp server on loopback, each connection bounded as a tunnelled one is."""

    port: int
    cut: list[str] = field(default_factory=list)  # why connections were closed


@pytest.fixture
async def bounded_server(socket_enabled: None) -> AsyncIterator[BoundedServer]:
    found = BoundedServer(0)

    async def answer(request: web.BaseRequest) -> web.Response:
        if request.path == "/not-read":
            return web.Response(status=404)
        digest = hashlib.sha256()
        async for data in request.content.iter_any():
            digest.update(data)
        return web.Response(text=digest.hexdigest())

    server = web.Server(answer)

    def make_protocol() -> asyncio.BaseProtocol:
        protocol = server()

        def close(why: str) -> Callable[[], None]:
            def closing() -> None:
                found.cut.append(why)
                if protocol.transport is not None:
                    protocol.transport.close()

            return closing

        events = aiohttp_internals.RequestEvents(
            lambda: None, close("head too large"), close("too much ahead"), lambda _: None
        )
        assert aiohttp_internals.bound_requests(protocol, ConnectionLimits(), events)
        return protocol

    listener = await asyncio.get_running_loop().create_server(make_protocol, LOOPBACK, 0)
    found.port = listener.sockets[0].getsockname()[1]
    yield found
    listener.close()
    await server.shutdown(1)


MiB = 1024 * 1024
# An upload of 3 MiB of what looks like framing and heads, in writes of uneven sizes.
UPLOAD = (LOOKALIKE + b"\r\n" * 100 + bytes(range(256))) * (3 * MiB // 500)
DIGEST = hashlib.sha256(UPLOAD).hexdigest()


def uneven_writes() -> Iterator[bytes]:
    start, size = 0, 1
    while start < len(UPLOAD):
        yield UPLOAD[start : start + size]
        start, size = start + size, size * 3 % 70_001 + 1


async def curl(url: str, *options: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "30", *options, url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    answer, _ = await process.communicate(UPLOAD)
    assert process.returncode == 0
    return answer.decode()


CURL_UPLOADS = {
    "curl -T -": ("-T", "-"),
    "curl --data-binary @- chunked": ("--data-binary", "@-", "-H", "Transfer-Encoding: chunked"),
    "curl --data-binary @- with a length": ("--data-binary", "@-"),
}


@pytest.mark.parametrize("options", CURL_UPLOADS.values(), ids=CURL_UPLOADS.keys())
async def test_curl_uploads_pass_the_bound(
    bounded_server: BoundedServer, options: tuple[str, ...]
) -> None:
    answer = await curl(f"http://{LOOPBACK}:{bounded_server.port}/up", *options)
    assert (answer, bounded_server.cut) == (DIGEST, [])


async def test_curl_sends_the_next_upload_on_the_same_connection(
    bounded_server: BoundedServer, tmp_path: Path
) -> None:
    """The first chunked body ends where curl ended it: the next request's head follows."""
    upload = tmp_path / "upload"
    upload.write_bytes(UPLOAD)
    url = f"http://{LOOPBACK}:{bounded_server.port}/up"
    chunked = ("--data-binary", f"@{upload}", "-H", "Transfer-Encoding: chunked")
    # The second transfer's count of new connections: 0 where it reused the first's.
    answer = await curl(url, *chunked, url, "--next", "-sS", *chunked, "-w", "%{num_connects}")
    assert (answer, bounded_server.cut) == (DIGEST * 2 + "0", [])


def http_client_upload(port: int) -> str:
    """Python's http.client, chunked (sizes in upper case hexadecimal)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    connection.request("POST", "/up", uneven_writes(), encode_chunked=True)
    return connection.getresponse().read().decode()


def requests_upload(port: int) -> str:
    answer = requests.post(f"http://{LOOPBACK}:{port}/up", data=uneven_writes(), timeout=30)
    return str(answer.text)


def httpx_upload(port: int) -> str:
    return httpx.post(f"http://{LOOPBACK}:{port}/up", content=uneven_writes(), timeout=30).text


PYTHON_CLIENTS = {
    "http.client": http_client_upload,
    "requests": requests_upload,
    "httpx": httpx_upload,
}


@pytest.mark.parametrize("upload", PYTHON_CLIENTS.values(), ids=PYTHON_CLIENTS.keys())
async def test_python_clients_streaming_uploads_pass_the_bound(
    bounded_server: BoundedServer, upload: Callable[[int], str]
) -> None:
    answer = await asyncio.to_thread(upload, bounded_server.port)
    assert (answer, bounded_server.cut) == (DIGEST, [])


async def test_aiohttp_clients_streaming_upload_passes_the_bound(
    bounded_server: BoundedServer,
) -> None:
    async def writes() -> AsyncIterator[bytes]:
        for write in uneven_writes():
            yield write

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{LOOPBACK}:{bounded_server.port}/up", data=writes()) as response,
    ):
        answer = await response.text()
    assert (answer, bounded_server.cut) == (DIGEST, [])


NGINX_FRONTS = {
    "streamed, chunked": "proxy_request_buffering off;\n",
    "buffered, with a length": "proxy_request_buffering on;\n",
}


@pytest.mark.parametrize("directives", NGINX_FRONTS.values(), ids=NGINX_FRONTS.keys())
async def test_uploads_through_nginx_in_front_pass_the_bound(
    bounded_server: BoundedServer, tmp_path: Path, directives: str
) -> None:
    location = (
        f"proxy_pass http://{LOOPBACK}:{bounded_server.port};\n"
        "proxy_http_version 1.1;\nchunked_transfer_encoding on;\n"
        "client_max_body_size 0;\n" + directives
    )
    nginx = Nginx(tmp_path / "nginx", location)
    nginx.start()
    try:
        await wait_for_port(nginx.port, accepting=True, timeout=10)
        url = f"http://{LOOPBACK}:{nginx.port}/up"
        answers = [await curl(url, *options) for options in CURL_UPLOADS.values()]
    finally:
        nginx.stop()
    assert (answers, bounded_server.cut) == ([DIGEST] * len(CURL_UPLOADS), [])


async def test_a_refused_upgrades_held_bytes_are_parsed_through_the_bound(
    bounded_server: BoundedServer,
) -> None:
    """aiohttp holds what follows a request that asked for an upgrade; answered without one,
    it parses the held bytes afterwards (finish_response): they pass the bound as well."""
    reader, writer = await asyncio.open_connection(LOOPBACK, bounded_server.port)
    upgrade = b"GET /not-read HTTP/1.1\r\nHost: x\r\n" + HEADERS["websocket upgrade"] + b"\r\n"
    writer.write(upgrade + FLOOD)
    answer = await asyncio.wait_for(reader.read(), 10)  # until the connection is closed
    writer.close()
    print(f"{answer[:40]!r}..., closed: {bounded_server.cut}")
    assert bounded_server.cut == ["head too large"]


# Blank lines before a request: aiohttp skips them, the bound counts each as a head's line.
BLANK_LINES = 126  # with a GET's three lines, within REQUEST_HEAD_LINES
PIPELINED = aiohttp_internals.MAX_QUEUED_REQUESTS  # all parsed, none beyond the queue's bound


def blank_lines_piece(before_each: bytes = b"") -> bytes:
    """A piece of pipelined requests, each after BLANK_LINES blank lines (and `before_each`),
    the last a POST whose body fills the piece: every blank line was a head's part."""
    get = before_each + b"\r\n" * BLANK_LINES + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    heads = get * (PIPELINED - 1) + before_each + b"\r\n" * BLANK_LINES
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %05d\r\n\r\n"
    body = PIECE - len(heads) - len(post % 0)
    return heads + post % body + b"x" * body


def counted_parts(pieces: list[bytes]) -> tuple[int, int]:
    """Requests parsed and parts fed to aiohttp's parser, for `pieces` on one bounded handler."""
    handler = request_handler(answering_server())
    recording = recorded(handler)
    events = aiohttp_internals.RequestEvents(print, print, print, print)
    assert aiohttp_internals.bound_requests(handler, ConnectionLimits(), events)
    for piece in pieces:
        handler.data_received(piece)
    return len(handler._messages), recording.parts


# A lone CR as well: llhttp skips any CR and LF before a request line.
@pytest.mark.parametrize("before_each", [b"", b"\r"], ids=["CRLF", "a lone CR first"])
async def test_blank_lines_before_pipelined_requests_are_not_a_part_each(
    before_each: bytes,
) -> None:
    """Each blank line was a part of its own, handed to aiohttp's parser alone with a copy of
    the rest of the piece: about 2,000 for a 32 KiB piece, 100 times aiohttp's own CPU
    (`scripts/bench --head-bound` prints the figures)."""
    requests, parts = counted_parts([blank_lines_piece(before_each)])
    print(f"{PIPELINED} pipelined requests after {BLANK_LINES} blank lines: {parts} parts")
    assert requests == PIPELINED
    assert parts <= 3 * PIPELINED  # blank lines, head, body


async def test_blank_lines_split_over_two_pieces_are_not_a_part_each() -> None:
    piece = blank_lines_piece()
    first, rest = piece[: 10 * 2], piece[10 * 2 :]  # ten of the first blank lines alone
    requests, parts = counted_parts([first, rest])
    print(f"blank lines split over two pieces: {parts} parts")
    assert requests == PIPELINED
    assert parts <= 3 * PIPELINED + 1
