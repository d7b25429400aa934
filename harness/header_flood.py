"""A hostile HTTP server in its own process: a status line, then header lines without end.

Each connection gets `HTTP/1.1 200 OK` and then `X-Filler: ...` lines, as fast as the client takes
them or one every `pause` seconds, for at most `_SECONDS` and `_MAX_BYTES` (50 MiB: what took
Home Assistant from 119 to 1,494 MiB before the bound).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .streaming_server import streaming_server

_LINE = b"X-Filler: " + b"a" * 80 + b"\r\n"
# Lines go 64 at a time when not paced: the flood outruns the client's reads.
_UNPACED_BATCH = 64
_SECONDS = 30
_MAX_BYTES = 50 * 1024**2


@contextlib.contextmanager
def header_flood(pause: float = 0.0, start: bytes = b"HTTP/1.1 200 OK\r\n") -> Iterator[int]:
    """Run the server for the block; yields the loopback port it listens on.

    `start` is what each connection gets before the header lines: a status line, or a whole
    chunked response's head and last chunk, so that the lines are its trailer.
    """
    repeat = 1 if pause else _UNPACED_BATCH
    with streaming_server(
        start, _LINE, repeat=repeat, pause=pause, seconds=_SECONDS, max_bytes=_MAX_BYTES
    ) as port:
        yield port
