"""A hostile server in its own process: a fixed start, then the same bytes over and over.

It runs apart from the test so that the CPU and memory the test measures are the client's alone.
Each connection gets `start`, then `unit` x `repeat` at a time, as fast as the client takes it,
or once every `pause` seconds, until the client hangs up, for at most `seconds` and `max_bytes`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from .network import LOOPBACK

_SCRIPT = """
import asyncio, time

CHUNK = {unit!r} * {repeat}

async def stream(reader, writer):
    writer.write({start!r})
    sent, deadline = 0, time.monotonic() + {seconds}
    try:
        while sent < {max_bytes} and time.monotonic() < deadline:
            writer.write(CHUNK)
            sent += len(CHUNK)
            await writer.drain()
            await asyncio.sleep({pause})  # sleep(0) too: other connections get their turn
    except OSError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(stream, "{host}", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep({seconds} * 2)

asyncio.run(main())
"""


@contextlib.contextmanager
def streaming_server(
    start: bytes,
    unit: bytes,
    *,
    repeat: int = 1,
    pause: float = 0.0,
    seconds: float,
    max_bytes: int,
) -> Iterator[int]:
    """Run the server for the block; yields the loopback port it listens on.

    The chunk goes as `unit` and `repeat` so that a large one does not make the command line
    (one argument) larger than the kernel allows.
    """
    script = _SCRIPT.format(
        start=start,
        unit=unit,
        repeat=repeat,
        pause=pause,
        seconds=seconds,
        max_bytes=max_bytes,
        host=LOOPBACK,
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait(timeout=5)
