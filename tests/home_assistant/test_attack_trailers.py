"""Attack: a chunked response's trailer is header lines the 64 KiB bound never counts.

The bound on response headers (aiohttp_client_internals.py) steps aside once the headers have
ended. A hostile public URL (or heartbeat endpoint) answers with a chunked body whose last
chunk is followed by trailer lines without end: aiohttp 3.13.3's parser keeps each of them, as
it kept header lines (it does not enforce `max_headers`), and the check reads the body until
the message ends, which the trailer never lets happen. Only the check's timeout ended it, after
+280 MiB in 0.96 s; the whole response is now bounded (aiohttp_client_internals.py).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from functools import partial
from pathlib import Path

from homeassistant.core import HomeAssistant

from custom_components.ssh_callhome.engine.probe import ProbeSpec
from custom_components.ssh_callhome.engine.public_url import (
    PublicUrlCheck,
    PublicUrlResult,
    check_public_url,
)
from custom_components.ssh_callhome.http_client import async_bounded_session
from harness.engine import CHECK_ANSWER
from harness.header_flood import header_flood
from harness.network import LOOPBACK

MiB = 1024 * 1024
CHUNKED_THEN_TRAILER = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(CHECK_ANSWER):x}\r\n".encode()
    + CHECK_ANSWER
    + b"\r\n0\r\n"
)
# The check's timeout here: what the test waits at most.
TIMEOUT = 3.0
# As for a header flood: the 64 KiB bound parsed costs about 2 MiB; the rest is noise.
MEMORY_MARGIN = 48 * MiB


def resident_bytes() -> int:
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * 4096


async def test_a_trailer_flood_is_bounded_as_a_header_flood(
    socket_enabled: None, hass: HomeAssistant
) -> None:
    with header_flood(start=CHUNKED_THEN_TRAILER) as port:
        check = PublicUrlCheck(
            url=f"http://{LOOPBACK}:{port}",
            session=partial(async_bounded_session, hass),
            tls=ssl.create_default_context(),
        )
        probe = ProbeSpec(path="/probe", answer=CHECK_ANSWER, timeout=TIMEOUT)
        started = time.monotonic()
        start = peak = resident_bytes()
        task = asyncio.ensure_future(check_public_url(check, probe))
        while not task.done():
            peak = max(peak, resident_bytes())
            await asyncio.wait({task}, timeout=0.01)
        seconds = time.monotonic() - started
    growth = peak - start
    print(f"trailer flood: {task.result()} after {seconds:.2f} s, memory +{growth / MiB:.0f} MiB")
    assert growth < MEMORY_MARGIN
    assert task.result() is PublicUrlResult.WRONG_ANSWER  # beyond the bound: not ours
