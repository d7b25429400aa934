"""Where a chunked request body cannot end yet: its chunks followed, so their data is not searched.

The head bound (aiohttp_internals._HeadBoundParser) must know where a body ends, since what follows
is the next request's head and is counted. A chunked body ends with its last chunk (size 0), its
trailer and a blank line; the bound searched every piece of such a body for its last blank line,
which over a large upload was the largest cost on Home Assistant's thread after idling
(docs/performance.md). Following the chunk sizes tells, for most pieces, that the body goes on
past them: a piece that lies within a chunk's data is passed whole, unsearched.

Only the plain form is followed: a size of hexadecimal digits, an optional extension without CR or
LF, CRLF; the data; CRLF. Each such line ends for aiohttp's parsers (C and Python) where it ends
here, so their chunk data begins where this one's does. Anything else (a longer size line than
SIZE_LINE_BYTES, a bare CR or LF, data not followed by CRLF, more than CHUNKS_PER_PIECE chunks
begun in one piece), and the last chunk, ends the following for the rest of the body: from then
on each piece is searched as before. So a visitor can make the bound no more costly than it was.
"""

from __future__ import annotations

import re

# A size line of up to 16 hexadecimal digits (llhttp's limit, a 64-bit size) and an extension.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\r\n")
# How long a size line may grow, extension included, and still be followed: clients send none
# or a short one; aiohttp skips longer ones, and the search covers them.
SIZE_LINE_BYTES = 1024
# How many chunks may begin in one piece (at most 32 KiB from an SSH packet, 256 KiB through
# TLS) and still be followed: each costs a few steps in Python, where the search costs one pass
# in C over the piece. Uploads come in chunks of KiB or more; many tiny ones end the following.
CHUNKS_PER_PIECE = 16
_CRLF = b"\r\n"


class ChunkedBody:
    """The framing of one chunked body, followed piece by piece from its first byte."""

    def __init__(self) -> None:
        self._data_left = 0  # of the current chunk's data
        self._crlf_due = b""  # what of the CRLF after a chunk's data has not come yet
        self._size_line = b""  # the part of a size line that has come
        self._followed = True

    def goes_on_past(self, data: bytes) -> bool:
        """Take `data`, the body's next bytes: whether the body certainly goes on after them.

        Once False (the last chunk has begun, or the framing is not the plain form), always
        False: the body may end anywhere from then on.
        """
        at = 0
        for _ in range(CHUNKS_PER_PIECE + 1):  # the data of the last one begun, too
            at = self._past_data(data, at)
            if self._followed and at < len(data):
                at = self._past_size_line(data, at)
            if not self._followed:
                return False
            if at == len(data):
                return True
        self._followed = False
        return False

    def _past_data(self, data: bytes, at: int) -> int:
        """Where the current chunk's data and the CRLF after it end in `data`, from `at`."""
        skipped = min(self._data_left, len(data) - at)
        self._data_left -= skipped
        at += skipped
        came = data[at : at + len(self._crlf_due)]
        if not self._crlf_due.startswith(came):
            self._followed = False
        self._crlf_due = self._crlf_due[len(came) :]
        return at + len(came)

    def _past_size_line(self, data: bytes, at: int) -> int:
        """Where the size line under way ends in `data`, from `at`; a whole one starts a chunk."""
        limit = min(len(data), at + SIZE_LINE_BYTES - len(self._size_line))
        end = data.find(b"\n", at, limit)
        if end < 0:
            self._size_line += data[at:limit]
            self._followed = limit == len(data)  # else longer than SIZE_LINE_BYTES
            return len(data)
        size_line, self._size_line = self._size_line + data[at : end + 1], b""
        self._start_chunk(size_line)
        return end + 1

    def _start_chunk(self, size_line: bytes) -> None:
        plain = _SIZE_LINE.fullmatch(size_line)
        size = int(plain[1], 16) if plain else 0
        # The last chunk (size 0) ends the following too: its trailer and blank line come.
        self._followed = self._followed and size > 0
        self._data_left, self._crlf_due = size, _CRLF
