"""Attack: a chunked body whose chunks the head bound follows, then a head it must count.

The head bound (aiohttp_internals._HeadBoundParser) passes a chunked body's pieces whole up to
where chunked_body.ChunkedBody says the body ends. Were that ever wrong, a head after the body's
end would reach aiohttp's parser (C llhttp or the Python one) uncounted. Here a real aiohttp
RequestHandler, bounded as a tunnelled connection is, is fed an upload of hostile framing, its
end and a head of far more lines than the bound, split anywhere: whenever aiohttp ended the
body, the head after it must be cut (or the bound refused the framing before). Trailer lines
without end, a body aiohttp's Python parser could not decode and a size line without end were
found to pass uncounted here (the first two before chunks were followed as well); all are cut.
"""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from custom_components.ssh_callhome.engine.chunked_body import SIZE_LINE_BYTES
from custom_components.ssh_callhome.engine.limits import REQUEST_HEAD_LINES
from harness.bounded_parser import LINE, PIECE, bounded, outcome

UPLOAD = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def outcomes(python_parser: bool, stream: bytes, splits: list[int]) -> dict[str, int]:
    """How often each outcome came of `stream` cut in two at each of `splits`; none uncut."""
    seen: dict[str, int] = {}
    for split in splits:
        happened = outcome(python_parser, stream, [split])
        assert happened != "uncut", split
        seen[happened] = seen.get(happened, 0) + 1
    return seen


def chunk(data: bytes, extension: bytes = b"", size: bytes | None = None) -> bytes:
    return b"%s%s\r\n%s\r\n" % (b"%x" % len(data) if size is None else size, extension, data)


END = b"0\r\n\r\n"
DATA = b"0\r\n\r\nGET / HTTP/1.1\r\n"  # data that looks like the body's end and a head

# Framing a hostile visitor sends, each followed by the body's plain end: sizes, extensions, the
# places of CR and LF, the last chunk and its trailer.
FRAMINGS = {
    "upper case size": chunk(b"x" * 171, size=b"AB"),
    "mixed case size": chunk(b"x" * 171, size=b"aB"),
    "16 digits": chunk(DATA, size=b"%016x" % len(DATA)),
    "17 digits, leading zeros": chunk(DATA, size=b"%017x" % len(DATA)),
    "40 digits, leading zeros": chunk(DATA, size=b"%040x" % len(DATA)),
    "16 digits, the largest": b"ffffffffffffffff\r\n" + DATA,
    "17 digits beyond 64 bits": b"10000000000000000\r\n" + DATA,
    "0x prefix": chunk(DATA, size=b"0x%x" % len(DATA)),
    "plus sign": chunk(DATA, size=b"+%x" % len(DATA)),
    "minus sign": b"-1\r\n" + DATA,
    "space before size": chunk(DATA, size=b" %x" % len(DATA)),
    "space after size": chunk(DATA, size=b"%x " % len(DATA)),
    "tab after size": chunk(DATA, size=b"%x\t" % len(DATA)),
    "space before extension": chunk(DATA, b" ;a=b"),
    "empty extension": chunk(DATA, b";"),
    "extensions": chunk(DATA, b";a=b;c;d=e"),
    "quoted extension": chunk(DATA, b';a="b c"'),
    "quoted extension with escapes": chunk(DATA, b';a="b\\"c\\\\"'),
    "quoted extension with CRLF": chunk(DATA, b';a="b\r\n0\r\n\r\n"'),
    "quoted extension with LF": chunk(DATA, b';a="b\n0\r\n\r\n"'),
    "NUL in extension": chunk(DATA, b";a\x00b"),
    "bare CR in extension": chunk(DATA, b";a\rb"),
    "obs-fold in extension": chunk(DATA, b";a=b\r\n c"),
    # A size line of SIZE_LINE_BYTES ("17;e...e\r\n"), and one byte longer.
    "size line at the followed length": chunk(DATA, b";" + b"e" * (SIZE_LINE_BYTES - 5)),
    "size line beyond the followed length": chunk(DATA, b";" + b"e" * (SIZE_LINE_BYTES - 4)),
    "very long extension": chunk(DATA, b";" + b"e" * 20_000),
    "bare LF ends size line": b"%x\n" % len(DATA) + DATA + b"\r\n",
    "CR CR LF ends size line": b"%x\r\r\n" % len(DATA) + DATA + b"\r\n",
    "bare LF after data": b"%x\r\n" % len(DATA) + DATA + b"\n",
    "bare CR after data": b"%x\r\n" % len(DATA) + DATA + b"\r",
    "LF CR after data": b"%x\r\n" % len(DATA) + DATA + b"\n\r",
    "no CRLF after data": b"%x\r\n" % len(DATA) + DATA,
    "data one byte short": b"%x\r\n" % (len(DATA) + 1) + DATA + b"\r\n",
    "data one byte long": b"%x\r\n" % (len(DATA) - 1) + DATA + b"\r\n",
    "empty size line": b"\r\n" + chunk(DATA),
    "many tiny chunks": chunk(b"\n") * 100,
    "zero with leading zeros": b"0000",
    "zero with 17 digits": b"0" * 17,
    "zero with extension": b"0;a=b",
}
# How the body ends after the framing: the last chunk with and without a trailer.
ENDS = {
    "end": END,
    "end with trailer": b"0\r\nX-T: 1\r\n\r\n",
    "end with bare LF": b"0\r\n\n",
}


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("framing", FRAMINGS.values(), ids=FRAMINGS.keys())
@pytest.mark.parametrize("end", ENDS.values(), ids=ENDS.keys())
async def test_a_head_after_a_hostile_chunked_body_is_cut_however_the_pieces_fall(
    python_parser: bool, framing: bytes, end: bytes
) -> None:
    stream = UPLOAD + _ended(framing, end)
    print(outcomes(python_parser, stream, splits_of(stream, len(UPLOAD))))


def splits_of(stream: bytes, body_start: int) -> list[int]:
    """Where to cut `stream` and the head after it in two: every offset of the body's start and
    end and of the head's start (all of a short body's)."""
    near_start = range(body_start - 2, body_start + 160)
    near_end = range(len(stream) - 160, len(stream) + 40)
    return sorted({*near_start, *near_end} - set(range(body_start - 2)))


def _ended(framing: bytes, end: bytes) -> bytes:
    """`framing` then the body's end: a framing that is itself a last chunk's size gets CRLF."""
    if framing.rstrip(b"0;ab=") == b"":
        return framing + end.removeprefix(b"0")
    return framing + end


TRANSFER_ENCODINGS = {
    "chunked, chunked": b"Transfer-Encoding: chunked, chunked\r\n",
    "gzip, chunked": b"Transfer-Encoding: gzip, chunked\r\n",
    "Chunked": b"Transfer-Encoding: Chunked\r\n",
    "two headers": b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    "with Content-Length": b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    "Expect 100-continue": b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n",
    "upgrade not allowed": b"Transfer-Encoding: chunked\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n",
}
REQUEST_LINES = {
    "POST": b"POST /up HTTP/1.1\r\n",
    "HTTP/1.0": b"POST /up HTTP/1.0\r\n",
    "HEAD": b"HEAD / HTTP/1.1\r\n",
    "GET": b"GET / HTTP/1.1\r\n",
    "CONNECT": b"CONNECT x:443 HTTP/1.1\r\n",
    "OPTIONS *": b"OPTIONS * HTTP/1.1\r\n",
    "absolute form": b"POST http://x/up HTTP/1.1\r\n",
}


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("request_line", REQUEST_LINES.values(), ids=REQUEST_LINES.keys())
@pytest.mark.parametrize("encoding", TRANSFER_ENCODINGS.values(), ids=TRANSFER_ENCODINGS.keys())
async def test_a_head_after_a_chunked_body_is_cut_whatever_the_request_says(
    python_parser: bool, request_line: bytes, encoding: bytes
) -> None:
    upload = request_line + b"Host: x\r\n" + encoding + b"\r\n"
    stream = upload + chunk(DATA) + chunk(b"x" * 100) + END
    print(outcomes(python_parser, stream, splits_of(stream, len(upload))))


FIRST_BODIES = {
    "followed to its end": chunk(b"a" * 3000, b";x=y") + END,
    "following ended by tiny chunks": chunk(b"a") * 40 + END,
    "following ended by a long extension": chunk(b"a", b";" + b"e" * SIZE_LINE_BYTES) + END,
    "following ended by leading zeros": chunk(b"a", size=b"0" * 17 + b"1") + END,
}


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@pytest.mark.parametrize("first_body", FIRST_BODIES.values(), ids=FIRST_BODIES.keys())
async def test_a_second_followed_upload_on_the_connection_is_bounded_too(
    python_parser: bool, first_body: bytes
) -> None:
    """What the first body's following left behind does not carry over to the second."""
    first = UPLOAD + first_body
    second = UPLOAD + chunk(b"b" * 100) + END
    splits = list(range(len(first) - 20, len(first) + len(second) + 40))
    assert outcomes(python_parser, first + second, splits) == {"cut": len(splits)}


# Framing bytes, plain and hostile, that a body's chunks are made of.
framing_bytes = st.sampled_from(
    [b"\r\n", b"\r", b"\n", b";", b"=", b'"', b"\\", b" ", b"\t", b"0", b"F", b"g", b"\x00", b"x"]
)
sizes = st.sampled_from([b"", b"0", b"00", b"1" * 17, b"0" * 16 + b"1", b"0x1", b"+1", b"A", b"a"])
extensions = st.lists(framing_bytes, max_size=6).map(b"".join)


# Extensions both parsers take: tokens, values, quoted strings.
plain_extensions = st.lists(
    st.sampled_from([b";a", b";a=b", b';q="x y"', b';q="\\""', b";" + b"e" * 200]), max_size=3
).map(b"".join)


@st.composite
def hostile_uploads(draw: st.DrawFn) -> bytes:
    """An upload: chunks, most plain, some not, then the last chunk and maybe a trailer."""
    stream = b""
    for data in draw(st.lists(st.binary(max_size=40) | extensions, max_size=5)):
        if draw(st.sampled_from([True, True, True, False])):
            stream += chunk(data, draw(plain_extensions))
        else:
            size = draw(sizes | st.just(b"%x" % len(data)))
            stream += size + draw(extensions) + draw(framing_bytes) + data + draw(extensions)
    stream += draw(st.sampled_from([b"0", b"00", b"0;e"])) + draw(plain_extensions) + b"\r\n"
    return UPLOAD + stream + draw(st.sampled_from([b"", b"X-T: 1\r\n"])) + b"\r\n"


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
@settings(max_examples=500, deadline=None)
@given(stream=hostile_uploads(), cuts=st.lists(st.integers(min_value=0), max_size=8))
async def test_a_head_after_any_chunked_body_is_cut(
    python_parser: bool, stream: bytes, cuts: list[int]
) -> None:
    happened = outcome(python_parser, stream, cuts)
    event(happened)  # how often the body ended and the head was cut: --hypothesis-show-statistics
    assert happened != "uncut"


# A body of a TiB that is not gzip, and the next request's head right after its first bytes.
NOT_GZIP = {
    "chunked": UPLOAD.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n")
    + b"%x\r\nnot gzip" % 2**40,
    "with a length": b"POST /up HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    % 2**40
    + b"not gzip",
}


@pytest.mark.parametrize(
    "python_parser",
    [
        pytest.param(False, id="C"),
        pytest.param(True, id="Python"),
    ],
)
@pytest.mark.parametrize("upload", NOT_GZIP.values(), ids=NOT_GZIP.keys())
async def test_a_head_after_a_body_aiohttp_could_not_decode_is_bounded(
    python_parser: bool, upload: bytes
) -> None:
    connection = bounded(python_parser)
    connection.send(upload)
    connection.send(b"GET / HTTP/1.1\r\n")
    for _ in range(40):  # 40 pieces of an endless head: 160,000 lines
        connection.send(LINE * (PIECE // len(LINE)))
    held = connection.held_lines()
    connection.send(b"\r\n")
    lines = [len(getattr(message, "headers", ())) for message, _ in connection.handler._messages]
    print(f"{python_parser=}: the parser held {held} header lines, then parsed {lines}")
    assert held <= REQUEST_HEAD_LINES + 1  # the bound feeds one line beyond, to see it crossed
    assert max(lines) <= REQUEST_HEAD_LINES


TRAILER_LINE = b"X-T: 1\r\n"


@pytest.mark.parametrize("python_parser", [False, True], ids=["C", "Python"])
async def test_a_trailer_that_never_ends_is_cut_as_a_head_is(python_parser: bool) -> None:
    connection = bounded(python_parser)
    connection.send(UPLOAD + chunk(b"hello") + b"0\r\n")  # the last chunk: its trailer comes
    tracemalloc.start()
    for _ in range(40):  # 40 pieces of trailer lines: 160,000 lines, 1.25 MiB
        connection.send(TRAILER_LINE * (PIECE // len(TRAILER_LINE)))
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{python_parser=}: 1.25 MiB of trailer lines, {held / 2**20:.1f} MiB held")
    assert connection.too_large == [None]


async def test_a_size_line_that_never_ends_is_not_kept_whole_by_the_python_parser() -> None:
    connection = bounded(python_parser=True)
    connection.send(UPLOAD + b"5;")
    for _ in range(40):  # 40 pieces of a chunk extension: 1.25 MiB
        connection.send(b"e" * PIECE)
    parser = getattr(connection.handler._request_parser, "_parser", None)
    kept = len(getattr(getattr(parser, "_payload_parser", None), "_chunk_tail", b""))
    print(f"an endless chunk extension: the Python parser keeps {kept / 2**20:.2f} MiB of it")
    assert kept <= SIZE_LINE_BYTES
