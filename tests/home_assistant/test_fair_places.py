"""A few addresses holding every place do not lock everybody else out.

A real OpenSSH server and Home Assistant's real HTTP server: visitors from 10 loopback addresses
hold all 100 places (the default total), some with a request answered and kept alive, some
without a word (or all with a request whose body never comes), and take a place again whenever
theirs is closed. A fresh visitor from another address must be served within SERVED_WITHIN all
the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from functools import partial
from unittest.mock import patch

import pytest

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.addresses import visitor_address
from custom_components.ssh_callhome.engine.limits import DEFAULT_MAX_CONNECTIONS, ConnectionLimits
from harness.ha_http import load_with_remote_view, through, visitor
from harness.integration import tunnel_of
from harness.load_client import answered
from harness.logs import keep_log_capture_small
from harness.network import connect_from, wait_until

FLOODING = [f"127.0.0.{host}" for host in range(10, 20)]
EACH = DEFAULT_MAX_CONNECTIONS // len(FLOODING)
FRESH = ["127.0.0.99", "127.0.0.98", "127.0.0.97"]
# What issue 22 asks: a fresh visitor is served within 5 s while the flood holds every place.
SERVED_WITHIN = 5.0
# Connections one flooder opens at most, however often its place is taken or refused.
MAX_ROUNDS = 1000
# A refused flooder tries again this soon: as eager as a flood can be without a busy loop.
RETRY_AFTER = 0.05
EVICTING = "All tunnelled connections are taken: closing idle or stalled ones"
# A request whose body never comes: Home Assistant's handler waits for it without end.
STALLED = b"POST /api/webhook/not-registered HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
# How soon a stalled request may give its place up here (10 s by default).
STALLED_AFTER = 1.0


@pytest.fixture
def stalled_soon() -> Iterator[None]:
    with patch.object(
        builder_module, "ConnectionLimits", partial(ConnectionLimits, stalled_after=STALLED_AFTER)
    ):
        yield


async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str) -> bool:
    """Whether a flooder holds its new connection `way`: silent, answered, or stalled."""
    if way == "answered":
        return bool(await answered(reader, writer))
    if way == "stalled":
        writer.write(STALLED)
    return True


async def hold_a_place(port: int, source: str, way: str, stop: asyncio.Event) -> None:
    """One flooder: holds a connection (see held()), again when closed."""
    for _ in range(MAX_ROUNDS):
        if stop.is_set():
            return
        with contextlib.suppress(OSError):
            reader, writer = await connect_from(port, source)
            if await held(reader, writer, way):
                closed = asyncio.create_task(reader.read())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
                closed.cancel()
                stopping.cancel()
            writer.transport.abort()
        await asyncio.sleep(RETRY_AFTER)


async def served_after(url: str, source: str) -> float:
    """Seconds a visitor from `source` waits for its answer."""
    started = time.monotonic()
    async with visitor(source) as session, session.get(url) as reply:
        assert await reply.text() == visitor_address(source)
    return time.monotonic() - started


@pytest.mark.parametrize("flood", ["idle", "stalled"])
async def test_a_fresh_visitor_is_served_while_ten_addresses_hold_every_place(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    stalled_soon: None,
    flood: str,
) -> None:
    keep_log_capture_small(caplog)
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    port = entry.data["remote_port"]
    stop = asyncio.Event()
    ways = ["silent", "answered"] if flood == "idle" else ["stalled"]
    flooders = [
        asyncio.create_task(hold_a_place(port, source, ways[index % len(ways)], stop))
        for source in FLOODING
        for index in range(EACH)
    ]
    try:
        await wait_until(
            lambda: stats.active_connections == DEFAULT_MAX_CONNECTIONS, 30, "every place held"
        )
        if flood == "stalled":
            # The requests stalled: a place is counted when its channel opens, its head comes a
            # moment later, and the quiet is measured from the head on.
            await asyncio.sleep(2 * STALLED_AFTER)
        waits = [await served_after(through(entry, "/api/test_remote"), fresh) for fresh in FRESH]
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    print(f"{flood}: fresh visitors served after {', '.join(f'{wait:.2f}' for wait in waits)} s")
    assert all(wait <= SERVED_WITHIN for wait in waits)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum(EVICTING in record.getMessage() for record in warnings) == 1
    await wait_until(lambda: stats.active_connections == 0, 10, "all closed")
