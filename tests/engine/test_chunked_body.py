"""A chunked body followed to its end (chunked_body.py): it ends exactly where aiohttp's does.

The head bound counts what follows a body as the next head from where ChunkedBody says the body
ends. Were that wrong, a head could pass uncounted (too late) or a body be cut (too soon); so
each answer is checked against aiohttp's own parsers (C and Python) fed the same pieces, over
bodies of plain and hostile framing split anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import pytest
from aiohttp.streams import StreamReader
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.ssh_callhome.engine.chunked_body import (
    SIZE_LINE_BYTES,
    ChunkedBody,
    FramingRefused,
    TrailerBounds,
)
from custom_components.ssh_callhome.engine.limits import REQUEST_HEAD_BYTES, REQUEST_HEAD_LINES
from harness.aiohttp_parsers import answering_server, request_handler

HEAD = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PIECE = 32 * 1024  # at most what one SSH packet brings
MiB = 1024 * 1024


class AiohttpBody:
    """aiohttp's request parser (C or Python) with one chunked request's head fed."""

    def __init__(self, python_parser: bool) -> None:
        parser = request_handler(answering_server(), python_parser)._request_parser
        assert parser is not None
        self._parser = parser
        [(_message, payload)], _upgraded, _tail = parser.feed_data(HEAD)
        assert isinstance(payload, StreamReader)
        self._payload = payload

    def ended_by(self, piece: bytes) -> bool | None:
        """Whether the body has ended once `piece` is parsed; None if the parser refused it."""
        try:
            self._parser.feed_data(piece)
        except Exception:  # noqa: BLE001 - any refusal closes the connection
            return None
        return self._payload.is_eof()


def pieces_of(stream: bytes, cuts: list[int]) -> Iterator[bytes]:
    """`stream` cut at `cuts` (offsets, in any order)."""
    bounds = [0, *sorted({cut % (len(stream) + 1) for cut in cuts}), len(stream)]
    return (stream[start:end] for start, end in pairwise(bounds))


def chunk(data: bytes, extension: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


# The pieces a chunked body's framing is made of, plain and hostile alike.
framing_bytes = st.sampled_from(
    [b"\r\n", b"\r", b"\n", b";", b"=", b'"', b" ", b"\t", b"0", b"a", b"G", b"\x00", b"-"]
)
extensions = st.lists(framing_bytes, max_size=8).map(b"".join)
chunk_data = st.binary(max_size=300) | st.lists(framing_bytes, max_size=40).map(b"".join)


@st.composite
def chunked_streams(draw: st.DrawFn) -> bytes:
    """A chunked body, its framing plain or not, then maybe trailer lines and a request."""
    stream = b""
    for data in draw(st.lists(chunk_data, max_size=6)):
        if draw(st.booleans()):  # plain
            stream += chunk(data, b";" + draw(extensions) if draw(st.booleans()) else b"")
        else:  # a size, an extension and an end of the line as a hostile visitor likes
            stream += draw(st.sampled_from([b"", b"0", b"%x" % len(data), b"1" * 17]))
            stream += draw(extensions) + draw(framing_bytes) + data + draw(extensions)
    stream += b"0" + draw(extensions) + b"\r\n" + draw(st.sampled_from([b"", b"X-T: 1\r\n"]))
    return stream + draw(st.sampled_from([b"\r\n" + NEXT, b"\r\n", b"\n", b""]))


def follower() -> ChunkedBody:
    return ChunkedBody(TrailerBounds(REQUEST_HEAD_BYTES, REQUEST_HEAD_LINES))


def ends_found(chunks: ChunkedBody, pieces: Iterator[bytes]) -> list[int | None]:
    """Where the body ends in each piece (None: it goes on), until it ends."""
    ends: list[int | None] = []
    for piece in pieces:
        ends.append(chunks.end_in(piece))
        if chunks.ended:
            break
    return ends


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@settings(max_examples=400, deadline=None)
@given(stream=chunked_streams(), cuts=st.lists(st.integers(min_value=0), max_size=12))
async def test_a_body_ends_where_aiohttp_ends_it_or_is_refused(
    python_parser: bool, stream: bytes, cuts: list[int]
) -> None:
    """Every piece: taken whole while aiohttp's body goes on; cut where aiohttp's body ended."""
    parsed = AiohttpBody(python_parser)
    chunks = follower()
    for piece in pieces_of(stream, cuts):
        try:
            end = chunks.end_in(piece)
        except FramingRefused:
            return  # refused: the connection is closed, nothing more is parsed
        body = piece if end is None else piece[:end]
        ended = parsed.ended_by(body)
        if ended is None:
            return  # aiohttp refused it: the connection is closed as well
        assert ended == (end is not None), (piece, stream)
        if ended:
            return


async def test_a_large_upload_is_followed_to_its_exact_end() -> None:
    """In 1 MiB chunks, 32 KiB pieces: every piece is taken whole until the end, found exactly."""
    stream = chunk(b"\n" * MiB) * 4 + b"0\r\nX-Trailer: 1\r\n\r\n"
    cuts = list(range(PIECE, len(stream), PIECE))
    ends = ends_found(follower(), pieces_of(stream + NEXT, cuts))
    assert ends == [None] * (len(ends) - 1) + [(len(stream) - 1) % PIECE + 1]


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"10\n" + b"x" * 16, id="a bare LF ends the size line"),
        pytest.param(b"10;a\rb\r\n" + b"x" * 16, id="a bare CR in the extension"),
        pytest.param(b" 10\r\n" + b"x" * 16, id="a space before the size"),
        pytest.param(b"0x10\r\n" + b"x" * 16, id="a 0x before the size"),
        pytest.param(b"1" * 17 + b"\r\n", id="a size beyond 64 bits"),
        pytest.param(b"3\r\nabcXY", id="no CRLF after the data"),
        pytest.param(b"3;" + b"e" * SIZE_LINE_BYTES + b"\r\nabc\r\n", id="a long extension"),
        pytest.param(b"0\r\nX-T: 1\n\r\n", id="a trailer line ended by a bare LF"),
        pytest.param(
            b"0\r\n" + b"X-T: 1\r\n" * (REQUEST_HEAD_LINES + 1), id="a trailer of many lines"
        ),
        pytest.param(b"0\r\nX-T: " + b"t" * REQUEST_HEAD_BYTES, id="a trailer line too long"),
    ],
)
def test_framing_not_plain_or_beyond_its_bounds_is_refused(framing: bytes) -> None:
    with pytest.raises(FramingRefused):
        follower().end_in(framing + b"x" * 64)


def test_lines_split_anywhere_are_followed() -> None:
    stream = chunk(b"d" * 20, b";name=value") + chunk(b"e" * 20) + b"0\r\nX-T: 1\r\n\r\n"
    for split in range(1, len(stream)):
        chunks = follower()
        ends = [chunks.end_in(stream[:split]), chunks.end_in(stream[split:] + NEXT)]
        assert ends == [None, len(stream) - split], split


def test_many_tiny_chunks_are_followed() -> None:
    """Some clients send each small write as a chunk of its own: many begin in one piece."""
    stream = chunk(b"x") * (PIECE // 6) + b"0\r\n\r\n"
    assert follower().end_in(stream + NEXT) == len(stream)


@st.composite
def plain_bodies(draw: st.DrawFn) -> bytes:
    """A chunked body as clients send it: sizes in either case, maybe a short extension."""
    body = b""
    for data in draw(st.lists(st.binary(max_size=2000), max_size=8)):
        size_line = b"%x\r\n" % len(data) if data else b""
        if data and draw(st.booleans()):
            size_line = b"%X;ext=%d\r\n" % (len(data), len(data))
        body += size_line + data + b"\r\n" if data else b""
    trailer = draw(st.lists(st.sampled_from([b"X-Sum: 1\r\n", b"Expires: 0\r\n"]), max_size=3))
    return body + b"0\r\n" + b"".join(trailer) + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(body=plain_bodies(), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_a_plain_body_is_never_refused_and_ends_at_its_end(body: bytes, cuts: list[int]) -> None:
    ends = ends_found(follower(), pieces_of(body + NEXT, cuts))
    pieces = list(pieces_of(body + NEXT, cuts))[: len(ends)]
    assert sum(map(len, pieces[:-1])) + (ends[-1] or 0) == len(body)
