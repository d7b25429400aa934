"""Attack: requests pipelined behind a body, through TLS, queue beyond the bound unchecked.

The bridge checks how many requests aiohttp has queued (MAX_QUEUED_REQUESTS) after each piece
of the channel it delivers. With TLS between them, asyncio's TLS protocol holds the ciphertext
while aiohttp has paused reading (a body nobody reads yet), up to 256 KiB, and when aiohttp
resumes it hands all of it over at once, from its own callback: no check follows. A visitor
that sends a body, then thousands of small requests behind it, and reads nothing, has them all
parsed and queued. Over plain HTTP the same bytes come through the bridge piece by piece and the
connection is closed. Held: a handshake that never completes (half a ClientHello, or one
trickled a byte at a time) is closed by the first-request timer. Real OpenSSH, Home Assistant's
real HTTP(S) server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from unittest.mock import patch

import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.const import CONF_REMOTE_PORT
from custom_components.ssh_callhome.engine.aiohttp_internals import MAX_QUEUED_REQUESTS
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.ha_http import load_with_remote_view
from harness.network import LOOPBACK

# A body bigger than aiohttp buffers before it pauses reading (2 x 64 KiB), for a handler that
# reads it only after a while (any handler that awaits something first): what aiohttp leaves and
# the requests behind it fit in what asyncio's TLS protocol holds meanwhile (256 KiB).
BODY = 200 * 1024
HEAD = b"POST /api/test_slow_upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
# How long the handler waits before it reads the body.
HANDLER_WAITS = 1.0
PIPELINED = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"
# Requests behind the body: about 90 KiB, well within what the TLS protocol hands over at once.
COUNT = 2000
# Quiet this long, the server has answered all it will.
QUIET = 3.0
# Reading the answers is bounded in bytes as well as in time.
READ_AT_MOST = 16 * 1024 * 1024
# The first-request timer in the handshake tests, and how late its closing may come on a loaded
# machine.
FIRST_REQUEST_TIMEOUT = 1.0
CLOSE_SLACK = 3.0
# A hello trickled a byte at a time, more slowly than the timer allows for the whole of it.
TRICKLE_EVERY = 0.1
TRICKLED_BYTES = 60
# The webhook's answer and the one being written, beyond the queue's bound.
IN_FLIGHT = 2


class SlowUploadView(HomeAssistantView):
    """Takes an upload, after awaiting something else first."""

    url = "/api/test_slow_upload"
    name = "api:test_slow_upload"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        await asyncio.sleep(HANDLER_WAITS)
        return web.Response(text=str(len(await request.read())))


async def answers_to_a_pipelined_flood(port: int, context: ssl.SSLContext | None) -> int:
    """Send the body and the requests behind it without reading, then count the answers."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context)
    writer.write(HEAD % BODY + b"x" * BODY + PIPELINED * COUNT)
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(writer.drain(), 10)
    await asyncio.sleep(QUIET)  # everything sent has been read by now, or refused
    received = b""
    with contextlib.suppress(TimeoutError, OSError):
        while len(received) < READ_AT_MOST:
            chunk = await asyncio.wait_for(reader.read(65536), QUIET)
            if not chunk:
                break
            received += chunk
    writer.transport.abort()
    return received.count(b"HTTP/1.1 ")


async def test_plain_http_closes_a_pipelined_flood_behind_a_body(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Held (the control): over plain HTTP the bound closes the connection."""
    hass.http.register_view(SlowUploadView())
    await load_with_remote_view(hass, entry)
    answers = await answers_to_a_pipelined_flood(entry.data[CONF_REMOTE_PORT], None)
    print(f"plain HTTP: {answers} answers to {COUNT + 1} requests")
    assert answers <= MAX_QUEUED_REQUESTS + IN_FLIGHT


async def test_tls_closes_a_pipelined_flood_behind_a_body(
    hass: HomeAssistant, https_entry: MockConfigEntry, https_certificate: Path
) -> None:
    hass.http.register_view(SlowUploadView())
    await load_with_remote_view(hass, https_entry)
    context = ssl.create_default_context(cafile=str(https_certificate))
    context.check_hostname = False
    answers = await answers_to_a_pipelined_flood(https_entry.data[CONF_REMOTE_PORT], context)
    print(f"HTTPS: {answers} answers to {COUNT + 1} requests")
    assert answers <= MAX_QUEUED_REQUESTS + IN_FLIGHT


@pytest.fixture
def short_first_request() -> Iterator[None]:
    shorter = partial(ConnectionLimits, first_request_timeout=FIRST_REQUEST_TIMEOUT)
    with patch.object(builder_module, "ConnectionLimits", shorter):
        yield


def client_hello(certificate: Path) -> bytes:
    """A real ClientHello, as the first flight of a browser's handshake."""
    client = ssl.create_default_context(cafile=str(certificate))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with contextlib.suppress(ssl.SSLWantReadError):
        client.wrap_bio(incoming, outgoing, server_hostname="x").do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("sent", ["half a hello", "a hello trickled"])
async def test_a_handshake_that_never_completes_is_closed_by_the_first_request_timer(
    hass: HomeAssistant,
    https_entry: MockConfigEntry,
    https_certificate: Path,
    short_first_request: None,
    sent: str,
) -> None:
    """Held: the first-request timer runs from the channel's opening, whatever TLS does."""
    await load_with_remote_view(hass, https_entry)
    hello = client_hello(https_certificate)
    reader, writer = await asyncio.open_connection(LOOPBACK, https_entry.data[CONF_REMOTE_PORT])
    opened = time.monotonic()
    if sent == "half a hello":
        writer.write(hello[: len(hello) // 2])
    else:  # one byte at a time, each well within any stall bound, never the whole hello
        for byte in hello[:TRICKLED_BYTES]:
            if reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(TRICKLE_EVERY)
    try:
        assert await asyncio.wait_for(reader.read(), FIRST_REQUEST_TIMEOUT + CLOSE_SLACK) == b""
    finally:
        writer.transport.abort()
    waited = time.monotonic() - opened
    print(f"{sent}: closed after {waited:.2f} s (first-request timer {FIRST_REQUEST_TIMEOUT} s)")
    assert waited <= FIRST_REQUEST_TIMEOUT + CLOSE_SLACK
