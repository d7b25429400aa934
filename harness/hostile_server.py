"""A hostile "SSH server" in its own process: a banner, then one packet announcing ~2 GiB.

It streams zeros until the client hangs up, for at most `_SECONDS` and `_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .streaming_server import streaming_server

ANNOUNCED_LENGTH = 0x7FFF_FFF0
_BANNER_AND_LENGTH = b"SSH-2.0-OpenSSH_9.2\r\n" + ANNOUNCED_LENGTH.to_bytes(4, "big") + bytes(4)
_SECONDS = 30
_MAX_BYTES = 4 * 1024**3


@contextlib.contextmanager
def hostile_server() -> Iterator[int]:
    """Run the server for the block; yields the loopback port it listens on."""
    with streaming_server(
        _BANNER_AND_LENGTH, b"\0", repeat=65536, seconds=_SECONDS, max_bytes=_MAX_BYTES
    ) as port:
        yield port
