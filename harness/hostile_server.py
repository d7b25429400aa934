"""A hostile "SSH server" in its own process: a banner, then one packet announcing ~2 GiB.

It runs apart from the test so that the CPU and memory the test measures are the client's alone.
It streams zeros until the client hangs up, for at most `_SECONDS` and `_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from .network import LOOPBACK

ANNOUNCED_LENGTH = 0x7FFF_FFF0

_SCRIPT = """
import asyncio, sys, time

CHUNK = bytes(65536)

async def stream(reader, writer):
    writer.write(b"SSH-2.0-OpenSSH_9.2\\r\\n" + ({length}).to_bytes(4, "big") + bytes(4))
    sent, deadline = 0, time.monotonic() + {seconds}
    try:
        while sent < {max_bytes} and time.monotonic() < deadline:
            writer.write(CHUNK)
            sent += len(CHUNK)
            await writer.drain()
    except OSError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(stream, "{host}", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep({seconds} * 2)

asyncio.run(main())
"""
_SECONDS = 30
_MAX_BYTES = 4 * 1024**3


@contextlib.contextmanager
def hostile_server() -> Iterator[int]:
    """Run the server for the block; yields the loopback port it listens on."""
    script = _SCRIPT.format(
        length=ANNOUNCED_LENGTH, seconds=_SECONDS, max_bytes=_MAX_BYTES, host=LOOPBACK
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait(timeout=5)
