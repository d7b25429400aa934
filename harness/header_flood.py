"""A hostile HTTP server in its own process: a status line, then header lines without end.

It runs apart from the test so that the memory the test measures is the client's alone. Each
connection gets `HTTP/1.1 200 OK` and then `X-Filler: ...` lines, as fast as the client takes
them or one every `pause` seconds, for at most `_SECONDS` and `_MAX_BYTES` (50 MiB: what took
Home Assistant from 119 to 1,494 MiB before the bound).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from .network import LOOPBACK

_SCRIPT = """
import asyncio, time

LINE = b"X-Filler: " + b"a" * 80 + b"\\r\\n"
BATCH = LINE * 64

async def flood(reader, writer):
    writer.write({start!r})
    sent, deadline = 0, time.monotonic() + {seconds}
    try:
        while sent < {max_bytes} and time.monotonic() < deadline:
            chunk = LINE if {pause} else BATCH
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
            await asyncio.sleep({pause})
    except OSError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(flood, "{host}", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep({seconds} * 2)

asyncio.run(main())
"""
_SECONDS = 30
_MAX_BYTES = 50 * 1024**2


@contextlib.contextmanager
def header_flood(pause: float = 0.0, start: bytes = b"HTTP/1.1 200 OK\r\n") -> Iterator[int]:
    """Run the server for the block; yields the loopback port it listens on.

    `start` is what each connection gets before the header lines: a status line, or a whole
    chunked response's head and last chunk, so that the lines are its trailer.
    """
    script = _SCRIPT.format(
        seconds=_SECONDS, max_bytes=_MAX_BYTES, pause=pause, host=LOOPBACK, start=start
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait(timeout=5)
