"""Attack: requests pipelined behind a body, through TLS, queue beyond the bound unchecked.

The bridge checks how many requests aiohttp has queued (MAX_QUEUED_REQUESTS) after each piece
of the channel it delivers. With TLS between them, asyncio's TLS protocol holds the ciphertext
while aiohttp has paused reading (a body nobody reads yet), up to 256 KiB, and when aiohttp
resumes it hands all of it over at once, from its own callback: no check follows. A visitor
that sends a body, then thousands of small requests behind it, and reads nothing, has them all
parsed and queued. Over plain HTTP the same bytes come through the bridge piece by piece and the
connection is closed. Real OpenSSH, Home Assistant's real HTTP(S) server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, DOMAIN
from custom_components.ssh_callhome.engine.aiohttp_internals import MAX_QUEUED_REQUESTS
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


@pytest.fixture
def https_entry(
    hass: HomeAssistant, entry_data: dict[str, Any], https_certificate: Path
) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    return entry


@pytest.mark.xfail(strict=True, reason="attack3: TLS hands aiohttp queued requests unchecked")
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
