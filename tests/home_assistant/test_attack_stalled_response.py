"""Attack: bytes sent while a response is stalled bypass the request head bound.

A real OpenSSH server and Home Assistant's real HTTP server. The visitor asks for a file larger
than what the channel and the sockets hold (Home Assistant serves `/local`, HACS cards and the
frontend's files without a login) and reads none of it: the response stalls in aiohttp's
drain, a response under way that no timer cuts and no newcomer evicts. Meanwhile it sends:

- after a request with `Upgrade: websocket` (aiohttp 3.13.3 marks it upgraded as its head is
  parsed, whatever the path): aiohttp appends every byte to the connection's `_message_tail`
  (one bytes object, copied whole at each piece) and never feeds it to the request parser,
  so the head bound never sees it;
- complete small requests, pipelined, without reading a single answer: no large file is
  needed (the answers themselves fill the buffers, 404s of Webhooks only too), each head is
  within the bound, but aiohttp parses and queues every request (`_messages`) without a limit,
  faster than it answers them.

Either way Home Assistant keeps all of it; the bound asked for here is the head bound's.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import EXPOSE_WEBHOOKS
from harness.attack import MiB, stream_until_closed, up
from harness.ha_http import serve_file
from harness.integration import tunnel_of
from harness.network import connect_from, wait_until
from harness.processes import resident_bytes

VISITOR = "127.0.0.2"
FILE_PATH = "/local/stalled.bin"
# Larger than what sshd's channel window (2 MiB), asyncssh's buffer and loopback sockets take.
FILE_BYTES = 32 * MiB
UPGRADE = (
    f"GET {FILE_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
)
# 2,340 of these fit in one 64 KiB write.
PIPELINED = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"
# What the attacker sends at most here (time-bounded too): enough to show growth many times
# what was sent, little enough for a shared test machine.
SEND_AT_MOST = 16 * MiB
SEND_FOR_AT_MOST = 30.0
# Until the response has filled every buffer on the way.
STALL_WAIT = 2.0
# What may reach Home Assistant's side before it stops reading or closes: the head bound and
# one SSH window (256 KiB), as for a head flood.
RECEIVED_AT_MOST = 1 * MiB


@pytest.mark.parametrize(
    ("attack", "exposure"),
    [
        ("upgrade_tail", "home_assistant"),
        ("pipelined_requests", "home_assistant"),
        ("pipelined_requests", EXPOSE_WEBHOOKS),
    ],
)
async def test_input_while_a_response_is_stalled_is_bounded(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path, attack: str, exposure: str
) -> None:
    stalled_file = tmp_path / "stalled.bin"
    stalled_file.write_bytes(os.urandom(FILE_BYTES))
    serve_file(hass, FILE_PATH, stalled_file)
    await up(hass, entry, exposure)
    stats = tunnel_of(entry).stats
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    if attack == "upgrade_tail":
        writer.write(UPGRADE.encode())
        await asyncio.sleep(STALL_WAIT)
        block = b"x" * 65536
    else:  # no stalled file: the unread answers stall the connection by themselves
        block = PIPELINED * (65536 // len(PIPELINED))
    before_bytes, before_memory = stats.bytes_received, resident_bytes()
    started = time.monotonic()
    sent = await stream_until_closed(reader, writer, SEND_AT_MOST, SEND_FOR_AT_MOST, block)
    await asyncio.sleep(0.5)  # what is in flight arrives
    received = stats.bytes_received - before_bytes
    print(
        f"{attack} ({exposure}): {sent / MiB:.1f} MiB sent in {time.monotonic() - started:.1f} s, "
        f"{received / MiB:.1f} MiB reached the bridge, Home Assistant grew "
        f"{(resident_bytes() - before_memory) / MiB:.0f} MiB, response sent "
        f"{stats.bytes_sent / MiB:.1f} MiB, open: {stats.active_connections}"
    )
    writer.transport.abort()
    await wait_until(lambda: stats.active_connections == 0, 30, "the channel closed")
    assert received <= RECEIVED_AT_MOST
