"""Attack through the tunnel: a chunked upload, whose chunks the head bound follows, then a head
that never ends, or a trailer that never ends.

A real OpenSSH server and Home Assistant's real HTTP server, over HTTP and HTTPS: the upload's
pieces are passed to aiohttp unsearched (chunked_body.py), and the head right after its last
chunk, in the same write, must still be counted and its channel closed. So must the trailer
lines after the last chunk, header lines to aiohttp's parser, which keeps each.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.engine import bridge
from harness.ha_http import load_with_remote_view, open_tls_visitor
from harness.integration import tunnel_of
from harness.load_client import send_endless_head
from harness.network import connect_from, wait_until

MiB = 1024 * 1024
VISITOR = "127.0.0.2"
# 2 MiB of chunked upload, in chunks of 1 MiB of blank lines (none of them a head's end), its
# last chunk, and in the same write the start of the next request.
CHUNKS = (
    b"POST /api/webhook/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n" % (MiB, b"\r\n" * (MiB // 2)) * 2
    + b"0\r\n"
)
UPLOAD = CHUNKS + b"\r\n"  # with its trailer's end
# What a head flooder sends at most; with the bound its channel is closed long before.
FLOOD_AT_MOST = 16 * MiB
# What reaches Home Assistant's side beyond the upload before the channel is closed: the head's
# bound, and what was under way in the channel's SSH window (256 KiB) then.
RECEIVED_AT_MOST = len(UPLOAD) + 1 * MiB


async def upload_then_flood_is_closed(
    entry: MockConfigEntry,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=bridge.__name__)
    stats = tunnel_of(entry).stats
    received_before = stats.bytes_received
    writer.write(UPLOAD)
    sent = await asyncio.wait_for(send_endless_head(reader, writer, FLOOD_AT_MOST), 60)
    writer.close()
    await wait_until(lambda: stats.active_connections == 0, 10, "the channel closed")
    received = stats.bytes_received - received_before
    print(f"upload then head flood: {sent / MiB:.2f} MiB sent, {received / MiB:.2f} MiB arrived")
    assert sent < FLOOD_AT_MOST
    assert received <= RECEIVED_AT_MOST
    assert "whose request head (or chunked body's framing) is beyond the bounds" in caplog.text


async def test_a_head_after_a_chunked_upload_closes_its_channel(
    hass: HomeAssistant, entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    await load_with_remote_view(hass, entry)
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    await upload_then_flood_is_closed(entry, reader, writer, caplog)


async def test_a_head_after_a_chunked_upload_closes_its_channel_through_tls(
    hass: HomeAssistant,
    https_entry: MockConfigEntry,
    https_certificate: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TLS hands aiohttp up to 256 KiB at once: the upload's end and the head in one piece."""
    await load_with_remote_view(hass, https_entry)
    reader, writer = await open_tls_visitor(https_entry, https_certificate)
    await upload_then_flood_is_closed(https_entry, reader, writer, caplog)


# Trailer lines sent at most (as a head flood): aiohttp's C parser keeps about 26 bytes for each
# byte of them; what the channel and the sockets hold when it is closed is sent before that.
TRAILER_AT_MOST = 16 * MiB


async def test_a_trailer_that_never_ends_closes_its_channel(
    hass: HomeAssistant, entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=bridge.__name__)
    await load_with_remote_view(hass, entry)
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    stats = tunnel_of(entry).stats
    sending = send_endless_head(reader, writer, TRAILER_AT_MOST, start=CHUNKS)
    sent = await asyncio.wait_for(sending, 60)
    writer.close()
    await wait_until(lambda: stats.active_connections == 0, 10, "the channel closed")
    print(f"endless trailer: {sent / MiB:.2f} MiB sent before the channel closed or we stopped")
    assert "whose request head (or chunked body's framing) is beyond the bounds" in caplog.text
    assert sent < TRAILER_AT_MOST
