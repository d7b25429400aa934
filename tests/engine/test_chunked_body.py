"""A chunked body's chunks followed (chunked_body.py): it never goes on where aiohttp ended it.

The head bound skips its search for a blank line in a piece only when ChunkedBody says the body
goes on past it. Were that wrong, a head after the body would pass uncounted; so each claim is
checked against aiohttp's own parsers (C and Python) fed the same pieces, over bodies of plain
and hostile framing split anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.ssh_callhome.engine.chunked_body import (
    CHUNKS_PER_PIECE,
    SIZE_LINE_BYTES,
    ChunkedBody,
)
from harness.aiohttp_parsers import request_handler

HEAD = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
PIECE = 32 * 1024  # at most what one SSH packet brings
MiB = 1024 * 1024


class AiohttpBody:
    """aiohttp's request parser (C or Python) with one chunked request's head fed."""

    def __init__(self, python_parser: bool) -> None:
        parser = request_handler(web.Server(_answer), python_parser)._request_parser
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


async def _answer(_request: web.BaseRequest) -> web.Response:
    return web.Response()


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


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@settings(max_examples=400, deadline=None)
@given(stream=chunked_streams(), cuts=st.lists(st.integers(min_value=0), max_size=12))
async def test_a_body_never_goes_on_past_a_piece_aiohttp_ended_it_in(
    python_parser: bool, stream: bytes, cuts: list[int]
) -> None:
    parsed = AiohttpBody(python_parser)
    chunks = ChunkedBody()
    for piece in pieces_of(stream, cuts):
        goes_on = chunks.goes_on_past(piece)
        ended = parsed.ended_by(piece)
        if ended is None:
            return  # refused: the connection is closed, no head follows
        assert not (goes_on and ended), (piece, stream)


async def test_a_large_upload_is_followed_to_its_last_chunk() -> None:
    """In 1 MiB chunks, 32 KiB pieces: every piece but the last goes on, unsearched."""
    stream = chunk(b"\n" * MiB) * 4 + b"0\r\n\r\n"
    chunks = ChunkedBody()
    cuts = list(range(PIECE, len(stream), PIECE))
    answers = [chunks.goes_on_past(piece) for piece in pieces_of(stream, cuts)]
    assert answers == [True] * (len(answers) - 1) + [False]


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"10\n" + b"x" * 16, id="a bare LF ends the size line"),
        pytest.param(b"10;a\rb\r\n" + b"x" * 16, id="a bare CR in the extension"),
        pytest.param(b" 10\r\n" + b"x" * 16, id="a space before the size"),
        pytest.param(b"1" * 17 + b"\r\n", id="a size beyond 64 bits"),
        pytest.param(b"3\r\nabcXY", id="no CRLF after the data"),
        pytest.param(b"3;" + b"e" * SIZE_LINE_BYTES + b"\r\nabc\r\n", id="a long extension"),
        pytest.param(chunk(b"x") * (CHUNKS_PER_PIECE + 1), id="many tiny chunks in one piece"),
        pytest.param(chunk(b"x") + b"0\r\n", id="the last chunk"),
    ],
)
def test_framing_not_plain_ends_the_following_for_the_rest_of_the_body(framing: bytes) -> None:
    chunks = ChunkedBody()
    assert not chunks.goes_on_past(framing + b"x" * 64)
    assert not chunks.goes_on_past(chunk(b"y" * 100))  # for good


def test_a_size_line_split_anywhere_is_followed() -> None:
    stream = chunk(b"d" * 20, b";name=value") + chunk(b"e" * 20)
    for split in range(len(stream)):
        chunks = ChunkedBody()
        answers = [chunks.goes_on_past(stream[:split]), chunks.goes_on_past(stream[split:])]
        assert answers == [True, True], split
        assert not chunks.goes_on_past(b"0\r\n")
