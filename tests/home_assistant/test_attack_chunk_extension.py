"""Attack: a chunked body that never gets a byte to its handler, yet moves bytes all the time.

A chunk's size line may carry an extension (`1;name=value`), which aiohttp's parser (llhttp)
skips without holding it and without limit. A visitor that opens a chunked POST and then sends
an endless extension at any speed moves bytes on its channel constantly, so the stall bound
(no byte moved) never fires, fair places never take the place (the request moves), and the
handler waits for a body that never comes. Not a trickle: the rate is the visitor's choice.
A bound on the body's own progress (bytes the handler can read), not on the channel's,
caught it first; now the head bound refuses a size line longer than 1 KiB (chunked_body.py)
before the stall bound's second. Real OpenSSH, Home Assistant's real HTTP server, an unknown
webhook (no login).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from functools import partial
from unittest.mock import patch

import pytest

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.ha_http import load_with_remote_view
from harness.integration import tunnel_of
from harness.network import connect_from

VISITOR = "127.0.0.2"
HEAD = (
    b"POST /api/webhook/not-registered HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;"
)
# The stall bound in this test, and how long the visitor keeps going: several times that.
STALL = 1.0
KEPT_FOR = 5 * STALL
# A piece of the extension, sent this often: 16 KiB/s, far from a trickle.
PIECE = b"a" * 1024
EVERY = 1 / 16


@pytest.fixture
def short_stall() -> Iterator[None]:
    with patch.object(
        builder_module, "ConnectionLimits", partial(ConnectionLimits, stall_timeout=STALL)
    ):
        yield


async def test_an_endless_chunk_extension_is_closed_like_a_stalled_body(
    hass: HomeAssistant, entry: MockConfigEntry, short_stall: None
) -> None:
    assert await async_setup_component(hass, "webhook", {})
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    reader, writer = await connect_from(entry.data["remote_port"], VISITOR)
    writer.write(HEAD)
    started = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - started < KEPT_FOR and not reader.at_eof():
            writer.write(PIECE)
            sent += len(PIECE)
            await asyncio.wait_for(writer.drain(), STALL)
            await asyncio.sleep(EVERY)
        held = stats.active_connections
    except (TimeoutError, OSError):
        held = 0
    finally:
        writer.transport.abort()
    print(f"{sent / 1024:.0f} KiB of extension over {KEPT_FOR:.0f} s: {held} place(s) still held")
    assert held == 0
