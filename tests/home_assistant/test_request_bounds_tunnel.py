"""Request heads, the first-request timer and idle keep-alive through the tunnel.

A real OpenSSH server, Home Assistant's real HTTP server (or the Webhooks only application) and
real clients from loopback addresses: a head that never ends closes its channel, on the first
request and on a later one, over HTTP and HTTPS; a blank line does not stop the first-request
timer; a kept-alive connection is closed after the idle bound, but nothing under way is; a
request on which no byte moves (a body that never comes, a response nobody reads) is closed
after the stall bound, but a slow one that moves, or a quiet websocket, is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from unittest.mock import patch

import aiohttp
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.const import CONF_EXPOSE, EXPOSE_WEBHOOKS
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.ha_http import load_with_remote_view, open_tls_visitor, serve_file, through, visitor
from harness.integration import tunnel_of
from harness.load_client import answered, send_endless_head
from harness.network import connect_from, wait_until

MiB = 1024 * 1024
VISITOR = "127.0.0.2"
# What a head flooder sends at most: without the bound, Home Assistant would then hold about
# 30 times as much; with it, the channel is closed long before. The sockets and sshd take
# some MiB before the visitor learns of it: what counts is what reached Home Assistant.
FLOOD_AT_MOST = 16 * MiB
# What reaches Home Assistant's side of a channel before it is closed: the head's bound, and
# what was under way in the channel's SSH window (256 KiB) then.
RECEIVED_AT_MOST = 1 * MiB
SHORT = 1.0  # the first-request and idle timeouts in these tests
# Longer than SHORT: what must not be cut by it.
UNDER_WAY = 3 * SHORT
# The stall bound in these tests: longer than the gaps of what is under way (UNDER_WAY / 2 at
# most), shorter than a quiet websocket (UNDER_WAY).
STALL = 2.5 * SHORT
# The timers fire within this of their time, on a loaded machine too.
SLACK = 3.0


@pytest.fixture
def short_timeouts() -> Iterator[None]:
    """Entries loaded meanwhile have a 1 s first-request timeout and idle bound, and STALL."""
    shorter = partial(
        ConnectionLimits, first_request_timeout=SHORT, idle_timeout=SHORT, stall_timeout=STALL
    )
    with patch.object(builder_module, "ConnectionLimits", shorter):
        yield


async def up(hass: HomeAssistant, entry: MockConfigEntry, exposure: str) -> None:
    if exposure == EXPOSE_WEBHOOKS:
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_EXPOSE: EXPOSE_WEBHOOKS}
        )
        assert await async_setup_component(hass, "webhook", {})
    await load_with_remote_view(hass, entry)


async def flood_is_closed(
    entry: MockConfigEntry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    stats = tunnel_of(entry).stats
    received_before = stats.bytes_received
    sent = await asyncio.wait_for(send_endless_head(reader, writer, FLOOD_AT_MOST), 60)
    writer.close()
    await wait_until(lambda: stats.active_connections == 0, 10, "the channel closed")
    received = stats.bytes_received - received_before
    print(f"head flood: {sent / MiB:.2f} MiB sent, {received / 1024:.0f} KiB reached the bridge")
    assert received <= RECEIVED_AT_MOST
    assert sent < FLOOD_AT_MOST


@pytest.mark.parametrize("request_first", [False, True], ids=["first", "later"])
@pytest.mark.parametrize("exposure", ["home_assistant", EXPOSE_WEBHOOKS])
async def test_a_head_that_never_ends_closes_its_channel(
    hass: HomeAssistant, entry: MockConfigEntry, exposure: str, request_first: bool
) -> None:
    await up(hass, entry, exposure)
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    if request_first:  # a kept-alive connection's next request
        assert (await answered(reader, writer)).startswith(b"HTTP/1.1 ")
    await flood_is_closed(entry, reader, writer)


async def test_a_head_that_never_ends_closes_its_channel_through_tls(
    hass: HomeAssistant, https_entry: MockConfigEntry, https_certificate: Path
) -> None:
    await load_with_remote_view(hass, https_entry)
    reader, writer = await open_tls_visitor(https_entry, https_certificate)
    assert (await answered(reader, writer)).startswith(b"HTTP/1.1 200")
    await flood_is_closed(https_entry, reader, writer)


async def closed_within(reader: asyncio.StreamReader, since: float) -> float:
    """Seconds from `since` until the server closes the connection."""
    assert await asyncio.wait_for(reader.read(), 10 * SHORT + SLACK) == b""
    return time.monotonic() - since


async def test_a_blank_line_does_not_stop_the_first_request_timer(
    hass: HomeAssistant, entry: MockConfigEntry, short_timeouts: None
) -> None:
    await load_with_remote_view(hass, entry)
    opened = time.monotonic()
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    writer.write(b"\r\n\r\n")
    waited = await closed_within(reader, opened)
    print(f"blank lines only: closed after {waited:.2f} s")
    assert SHORT <= waited < SHORT + SLACK
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_the_idle_bound(
    hass: HomeAssistant, entry: MockConfigEntry, short_timeouts: None
) -> None:
    await load_with_remote_view(hass, entry)
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    await asyncio.sleep(SHORT / 2)
    assert (await answered(reader, writer)).startswith(b"HTTP/1.1 200")
    await asyncio.sleep(SHORT / 2)  # past the first-request timeout, within the idle bound
    assert (await answered(reader, writer)).startswith(b"HTTP/1.1 200")
    answered_at = time.monotonic()
    idle = await closed_within(reader, answered_at)
    print(f"idle kept-alive connection: closed after {idle:.2f} s (bound {SHORT} s)")
    assert SHORT - 0.1 <= idle < SHORT + SLACK
    writer.close()


class UnderWayView(HomeAssistantView):
    """A response that streams for UNDER_WAY, an upload read as it comes, a quiet websocket."""

    url = "/api/test_under_way/{what}"
    name = "api:test_under_way"
    requires_auth = False

    async def get(self, request: web.Request, what: str) -> web.StreamResponse:
        if what == "websocket":
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            message = await socket.receive_str()  # after a silence longer than the idle bound
            await socket.send_str(message)
            await socket.close()
            return socket
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(3):
            await asyncio.sleep(UNDER_WAY / 3)
            await response.write(b"part\n")
        await response.write_eof()
        return response

    async def post(self, request: web.Request, what: str) -> web.Response:
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
        return web.Response(text=digest.hexdigest())


async def slow_body() -> AsyncIterator[bytes]:
    """A body that takes UNDER_WAY; its first part at once (aiohttp sends the head with it)."""
    for part in range(3):
        if part:
            await asyncio.sleep(UNDER_WAY / 2)
        yield b"slowly\n"


async def test_what_is_under_way_is_not_cut_by_the_idle_or_the_stall_bound(
    hass: HomeAssistant, entry: MockConfigEntry, short_timeouts: None
) -> None:
    hass.http.register_view(UnderWayView())
    await load_with_remote_view(hass, entry)
    async with visitor(VISITOR) as session:
        async with session.get(through(entry, "/api/test_under_way/stream")) as reply:
            assert await reply.read() == b"part\n" * 3
        async with session.post(through(entry, "/api/test_under_way/up"), data=slow_body()) as up:
            assert await up.text() == hashlib.sha256(b"slowly\n" * 3).hexdigest()
        async with session.ws_connect(through(entry, "/api/test_under_way/websocket")) as socket:
            await asyncio.sleep(UNDER_WAY)
            await socket.send_str("still here")
            assert await socket.receive_str(timeout=10) == "still here"


async def test_uploads_keep_alive_and_pipelining_work_within_the_bounds(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    hass.http.register_view(UnderWayView())
    await load_with_remote_view(hass, entry)
    upload = os.urandom(4 * MiB)
    url = through(entry, "/api/test_under_way/up")

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(upload), MiB):
            yield upload[start : start + MiB]

    connector = aiohttp.TCPConnector(local_addr=(VISITOR, 0), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for data in (upload, chunked(), upload):  # one kept-alive connection
            async with session.post(url, data=data) as reply:
                assert await reply.text() == hashlib.sha256(upload).hexdigest()
    assert tunnel_of(entry).stats.connections_refused == 0
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    request = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(request * 3)  # pipelined: three requests before any answer
    for _ in range(3):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readuntil(b"7f00:2")  # the answer: the visitor's address as seen
    writer.close()


# A body announced and never sent: Home Assistant's webhook handler waits for it without end.
NEVER_ENDING = b"POST /api/webhook/unknown HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
# Larger than what sshd's window (2 MiB), the channel's buffers and loopback sockets hold.
UNREAD_FILE_BYTES = 32 * MiB


@pytest.mark.parametrize("stalled", ["body", "response"])
async def test_a_request_on_which_no_byte_moves_is_closed_after_the_stall_bound(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path, short_timeouts: None, stalled: str
) -> None:
    unread = tmp_path / "unread.bin"
    unread.write_bytes(os.urandom(UNREAD_FILE_BYTES))
    serve_file(hass, "/local/unread.bin", unread)
    assert await async_setup_component(hass, "webhook", {})
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    _reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    if stalled == "body":
        writer.write(NEVER_ENDING)
    else:  # and never reads a byte of the answer
        writer.write(b"GET /local/unread.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_until(lambda: stats.active_connections == 1, 10, "the channel open")
    waited = await wait_until(lambda: stats.active_connections == 0, STALL + SLACK, "closed")
    print(f"stalled {stalled}: place freed after {waited:.2f} s (bound {STALL} s)")
    assert waited >= STALL - 0.1  # no byte moved for STALL (the response's last a bit later)
    writer.transport.abort()
