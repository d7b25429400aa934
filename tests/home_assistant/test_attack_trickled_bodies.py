"""Attack: uploads that trickle hold every place, never stall, and are never given up.

A request under way gives its place up at full caps only once no byte moved for `stalled_after`
(10 s), and is closed after `stall_timeout` (120 s) without a byte. Neither bounds how long a
request may last, nor how slowly its body may come: a body announced as large and sent one
byte every 9 s keeps a place for as long as the visitor likes. Five addresses (or five IPv6
/64s) at their per-visitor cap so hold the whole total, and every newcomer is refused.
Here the timings are scaled down (stalled after 1 s, a byte every 0.5 s); the policy is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from functools import partial
from unittest.mock import patch

import aiohttp
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.addresses import visitor_address
from custom_components.ssh_callhome.engine.limits import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
    MIN_BODY_RATE,
    ConnectionLimits,
)
from harness.ha_http import load_with_remote_view, through, visitor
from harness.integration import tunnel_of
from harness.logs import keep_log_capture_small
from harness.network import connect_from, wait_until

# Each at its per-visitor cap: together they hold the total.
FLOODING = [
    f"127.0.0.{host}"
    for host in range(10, 10 + DEFAULT_MAX_CONNECTIONS // DEFAULT_MAX_CONNECTIONS_PER_VISITOR)
]
FRESH = "127.0.0.99"
STALLED_AFTER = 1.0
# Half of STALLED_AFTER: a request that moves a byte this often never counts as stalled.
TRICKLE_EVERY = STALLED_AFTER / 2
# What a newcomer is given to be served: five times the time after which places are given up.
SERVED_WITHIN = 5 * STALLED_AFTER
# Bytes one trickling upload sends at most (bounded loop): longer than the test lasts.
MAX_TRICKLED = 200
# A slow upload that keeps the minimum rate: each piece alone is what the rate asks of a whole
# window (STALLED_AFTER, two seconds here), and a piece goes every quarter window. The test
# shares its event loop and two cores with 100 uploads and sshd: a piece held up for up to
# 1.5 s must not make an upload look slow (a loaded CI machine held one up for over a second).
PACED_STALLED_AFTER = 2.0
PACED_PIECE = b"x" * int(MIN_BODY_RATE * PACED_STALLED_AFTER)
UPLOAD_HEAD = (
    b"POST /api/test_upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 1000000000\r\n\r\n"
)


class UploadView(HomeAssistantView):
    """An upload that reads its whole body, as a webhook or a file upload does."""

    url = "/api/test_upload"
    name = "api:test_upload"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))


@pytest.fixture
def stalled_soon() -> Iterator[None]:
    with patch.object(
        builder_module, "ConnectionLimits", partial(ConnectionLimits, stalled_after=STALLED_AFTER)
    ):
        yield


async def trickle(port: int, source: str, stop: asyncio.Event, piece: bytes = b"x") -> None:
    """One upload whose body comes a `piece` at a time, quicker than a stall."""
    with contextlib.suppress(OSError):
        reader, writer = await connect_from(port, source)
        writer.write(UPLOAD_HEAD)
        for _ in range(MAX_TRICKLED):
            if stop.is_set() or reader.at_eof():
                break
            writer.write(piece)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TRICKLE_EVERY)
        writer.transport.abort()


async def fill_every_place(
    entry: MockConfigEntry, stop: asyncio.Event, piece: bytes, stalled_after: float
) -> list[asyncio.Task[None]]:
    """Uploads from FLOODING, each at its cap, sending `piece` every TRICKLE_EVERY."""
    stats = tunnel_of(entry).stats
    uploads = [
        asyncio.create_task(trickle(entry.data["remote_port"], source, stop, piece))
        for source in FLOODING
        for _ in range(DEFAULT_MAX_CONNECTIONS_PER_VISITOR)
    ]
    await wait_until(
        lambda: stats.active_connections == DEFAULT_MAX_CONNECTIONS, 30, "every place held"
    )
    await asyncio.sleep(3 * stalled_after)  # long past "stalled", had they stalled
    return uploads


async def test_a_fresh_visitor_is_served_while_five_addresses_trickle_uploads(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    stalled_soon: None,
) -> None:
    keep_log_capture_small(caplog)
    hass.http.register_view(UploadView())
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    stop = asyncio.Event()
    uploads: list[asyncio.Task[None]] = []
    try:
        uploads = await fill_every_place(entry, stop, b"x", STALLED_AFTER)
        started = time.monotonic()
        async with (
            visitor(FRESH) as session,
            session.get(through(entry, "/api/test_remote")) as reply,
        ):
            assert await reply.text() == visitor_address(FRESH)
        waited = time.monotonic() - started
    finally:
        refused = stats.connections_refused
        stop.set()
        await asyncio.gather(*uploads)
    print(f"fresh visitor served after {waited:.2f} s; refusals {refused}")
    assert waited <= SERVED_WITHIN


async def test_slow_uploads_that_keep_the_minimum_rate_keep_their_places(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keep_log_capture_small(caplog)
    hass.http.register_view(UploadView())
    paced = partial(ConnectionLimits, stalled_after=PACED_STALLED_AFTER)
    with patch.object(builder_module, "ConnectionLimits", paced):
        await load_with_remote_view(hass, entry)
    gate_stats = tunnel_of(entry).stats
    stop = asyncio.Event()
    uploads: list[asyncio.Task[None]] = []
    try:
        uploads = await fill_every_place(entry, stop, PACED_PIECE, PACED_STALLED_AFTER)
        with pytest.raises(aiohttp.ClientError):  # refused: no upload gave its place up
            async with (
                visitor(FRESH) as session,
                session.get(through(entry, "/api/test_remote")) as reply,
            ):
                await reply.read()
        held = gate_stats.active_connections
    finally:
        stop.set()
        await asyncio.gather(*uploads)
    print(f"paced uploads ({len(PACED_PIECE) / TRICKLE_EVERY:.0f} B/s each) held {held} places")
    assert held == DEFAULT_MAX_CONNECTIONS
