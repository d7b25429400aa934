"""A chunked request body followed to its exact end, its framing and trailer bounded.

The head bound (aiohttp_internals._HeadBoundParser) must know where a body ends, since what
follows is the next request's head and is counted. A chunked body ends with its last chunk (size
0), a trailer of header lines and a blank line. Following the chunks tells exactly where, without
searching the data: a piece within a chunk's data is passed whole (searching every piece for
blank lines was the largest cost of an upload on Home Assistant's thread, performance.md).

The trailer is header lines that aiohttp's parsers keep as they keep a head's (C: each in its
header lists, about 26 bytes held for one sent), so it is bounded as a head is, in bytes and
lines. Only the plain form is taken: a size of hexadecimal digits, an optional extension without
CR or LF, CRLF; the data; CRLF; lines ending in CRLF. Each line ends for aiohttp's parsers (C and
Python) where it ends here, so their chunk data begins and their body ends where this one's do.
Any other framing, or a size line longer than SIZE_LINE_BYTES, is refused (FramingRefused): the
connection is closed, as for a head beyond the bound. Clients send sizes in plain hexadecimal and
no extensions; aiohttp's Python parser keeps a size line whole until its end comes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A size of up to 16 hexadecimal digits: a 64-bit size. aiohttp's parsers take more digits when
# the first are zeros, which no client sends: refused here.
_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CR, _SEMICOLON = ord("\r"), ord(";")
# How long a size line may be, extension included: clients send none or a short one.
SIZE_LINE_BYTES = 1024
_CRLF = b"\r\n"


class FramingRefused(Exception):
    """A chunked body's framing is not the plain form, or goes beyond its bounds."""


@dataclass(frozen=True, slots=True)
class TrailerBounds:
    """How much trailer a chunked body may have: a head's bounds (limits.py)."""

    max_bytes: int
    max_lines: int


class ChunkedBody:
    """The framing of one chunked body, followed piece by piece from its first byte."""

    __slots__ = (
        "_crlf_due",
        "_data_left",
        "_in_trailer",
        "_line",
        "_trailer_bounds",
        "_trailer_bytes",
        "_trailer_lines",
        "ended",
    )

    def __init__(self, trailer: TrailerBounds) -> None:
        self._trailer_bounds = trailer
        self._data_left = 0  # of the current chunk's data
        self._crlf_due = b""  # what of the CRLF after a chunk's data has not come yet
        self._line = b""  # the part of a size or trailer line that has come
        self._in_trailer = False
        self._trailer_bytes = 0
        self._trailer_lines = 0
        self.ended = False

    def end_in(self, data: bytes) -> int | None:
        """Take `data`, the body's next bytes: where in it the body ends, or None if it goes on.

        Raises FramingRefused for framing not in the plain form or beyond its bounds.
        """
        at = 0
        # Each pass takes at least a byte (data, a CRLF, a line or its start): bounded.
        while not self.ended and at < len(data):
            if self._data_left:
                skipped = min(self._data_left, len(data) - at)
                self._data_left -= skipped
                at += skipped
            elif (chunk_data := self._after_whole_size_line(data, at)) is not None:
                at = chunk_data
            elif self._crlf_due:
                at = self._past_crlf(data, at)
            else:
                at = self._past_line(data, at)
        return at if self.ended else None

    def _after_whole_size_line(self, data: bytes, at: int) -> int | None:
        """Where the next chunk's data begins, if the CRLF due and its size line are at `at`.

        The common case, in one step (clients that send each small write as a chunk of its
        own put hundreds in a piece); None leaves it to the steps that take a part at a time.
        """
        if self._line or self._in_trailer or not data.startswith(self._crlf_due, at):
            return None
        start = at + len(self._crlf_due)
        line_end = data.find(b"\n", start, start + SIZE_LINE_BYTES)
        size = None if line_end < 0 else _plain_size(data, start, line_end)
        if size is None:
            return None
        self._begin_chunk(size)
        return line_end + 1

    def _past_crlf(self, data: bytes, at: int) -> int:
        """Where the CRLF after a chunk's data ends in `data`, from `at`."""
        came = data[at : at + len(self._crlf_due)]
        if not self._crlf_due.startswith(came):
            raise FramingRefused("no CRLF after a chunk's data")
        self._crlf_due = self._crlf_due[len(came) :]
        return at + len(came)

    def _past_line(self, data: bytes, at: int) -> int:
        """Where the size or trailer line under way ends in `data`, from `at`."""
        room = self._room_for_line()
        limit = min(len(data), at + room - len(self._line))
        end = data.find(b"\n", at, limit)
        if end < 0:
            if limit < len(data):
                raise FramingRefused("a size or trailer line beyond its bound")
            self._line += data[at:limit]
            return len(data)
        line, self._line = self._line + data[at : end + 1], b""
        if self._in_trailer:
            self._take_trailer_line(line)
        else:
            self._start_chunk(line)
        return end + 1

    def _room_for_line(self) -> int:
        if self._in_trailer:
            return self._trailer_bounds.max_bytes - self._trailer_bytes
        return SIZE_LINE_BYTES

    def _start_chunk(self, size_line: bytes) -> None:
        size = _plain_size(size_line, 0, len(size_line) - 1)
        if size is None:
            raise FramingRefused("a size line not in the plain form")
        self._begin_chunk(size)

    def _begin_chunk(self, size: int) -> None:
        self._data_left = size
        # The last chunk (size 0) has no data: its trailer comes.
        self._in_trailer = size == 0
        self._crlf_due = b"" if self._in_trailer else _CRLF

    def _take_trailer_line(self, line: bytes) -> None:
        if not line.endswith(_CRLF):
            raise FramingRefused("a trailer line not ended by CRLF")
        self._trailer_bytes += len(line)
        self._trailer_lines += 1
        if self._trailer_lines > self._trailer_bounds.max_lines:
            raise FramingRefused("a trailer beyond its bound in lines")
        self.ended = line == _CRLF


def _plain_size(data: bytes, start: int, line_end: int) -> int | None:
    """The size the size line from `start` to its LF at `line_end` gives, if in the plain form.

    Digits, then CRLF or an extension (`;` and anything but CR up to the CRLF); checked with
    C's searches rather than a pattern over the extension, which cost 9 ns a byte.
    """
    digits = _SIZE.match(data, start, line_end)
    if digits is None or data[line_end - 1] != _CR:
        return None
    after, cr = digits.end(), line_end - 1
    if after < cr and (data[after] != _SEMICOLON or data.find(b"\r", after, cr) >= 0):
        return None
    return int(digits[0], 16)
