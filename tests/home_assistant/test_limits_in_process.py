"""Caps and the request-header timeout for connections handed to Home Assistant's own server."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, DOMAIN
from custom_components.ssh_callhome.engine.limits import ConnectionLimits
from harness.ha_http import load_with_remote_view
from harness.integration import read_counters_now, tunnel_of
from harness.network import LOOPBACK, closed_at_once, connect_from, wait_until

REFUSED_SENSOR = "sensor.root_127_0_0_1_connections_refused"
REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\n\r\n"
TIMEOUT = 1.0


async def test_caps_refuse_the_visitor_beyond_them_and_serve_the_others(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "max_connections": 10, "max_connections_per_visitor": 6}
    )
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    port = entry.data[CONF_REMOTE_PORT]
    held = []
    for count in range(1, 7):
        reader, writer = await connect_from(port, "127.0.0.2")
        writer.write(REQUEST[:20])  # a request under way
        held.append(writer)
        await wait_until(lambda n=count: stats.active_connections == n, 5, "held")  # type: ignore[misc]
    assert await closed_at_once(port, "127.0.0.2")
    reader, writer = await connect_from(port, "127.0.0.3")
    writer.write(REQUEST)
    assert (await answer(reader, b"64:ff9b:1::7f00:3")).startswith(b"HTTP/1.1 200")
    writer.close()
    await read_counters_now(entry)
    state = hass.states.get(REFUSED_SENSOR)
    assert state is not None
    assert state.state == "1"
    for writer in held:
        writer.close()
    await wait_until(lambda: stats.active_connections == 0, 5, "all closed")


async def answer(reader: asyncio.StreamReader, ending: bytes) -> bytes:
    """An HTTP answer up to the body `ending`, or a failure after 10 s."""
    return await asyncio.wait_for(reader.readuntil(ending), 10)


@pytest.fixture
def short_request_timeout() -> Iterator[None]:
    """Entries loaded meanwhile close a connection without a request header after 1 s."""
    shorter = partial(ConnectionLimits, first_request_timeout=TIMEOUT)
    with patch.object(builder_module, "ConnectionLimits", shorter):
        yield


async def closed_after(reader: asyncio.StreamReader, opened: float) -> float:
    """Seconds from `opened` until the server closes the connection (with nothing sent back)."""
    assert await asyncio.wait_for(reader.read(), 10) == b""
    return time.monotonic() - opened


async def test_a_connection_without_a_request_header_is_closed_in_time(
    hass: HomeAssistant, entry: MockConfigEntry, short_request_timeout: None
) -> None:
    await load_with_remote_view(hass, entry)
    port = entry.data[CONF_REMOTE_PORT]
    opened = time.monotonic()
    silent_reader, silent = await connect_from(port, "127.0.0.2")
    partial_reader, partial_header = await connect_from(port, "127.0.0.3")
    partial_header.write(REQUEST[:-2])  # all but the header's last line end
    talker_reader, talker = await connect_from(port, "127.0.0.4")
    talker.write(REQUEST[:-1])
    await asyncio.sleep(0.1)
    talker.write(REQUEST[-1:])  # the header's end spans two pieces
    assert (await answer(talker_reader, b"64:ff9b:1::7f00:4")).startswith(b"HTTP/1.1 200")
    assert TIMEOUT <= await closed_after(silent_reader, opened) < TIMEOUT + 3
    assert await closed_after(partial_reader, opened) < TIMEOUT + 3
    await asyncio.sleep(TIMEOUT)  # a kept-alive connection's next request may come any time
    talker.write(REQUEST)
    assert (await answer(talker_reader, b"64:ff9b:1::7f00:4")).startswith(b"HTTP/1.1 200")
    for writer in (silent, partial_header, talker):
        writer.close()
    await wait_until(lambda: tunnel_of(entry).stats.active_connections == 0, 5, "all closed")


async def test_the_request_header_timeout_reads_through_tls(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    https_certificate: Path,
    short_request_timeout: None,
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    await load_with_remote_view(hass, entry)
    context = ssl.create_default_context(cafile=str(https_certificate))
    context.check_hostname = False
    port = entry.data[CONF_REMOTE_PORT]
    opened = time.monotonic()
    silent_reader, silent = await asyncio.open_connection(LOOPBACK, port, ssl=context)
    talker_reader, talker = await asyncio.open_connection(LOOPBACK, port, ssl=context)
    # A request in the handshake's last read can reach the server before its TLS set-up has
    # finished (_serve_tls); that start-up is not what this test is about.
    await asyncio.sleep(0.2)
    talker.write(REQUEST)
    assert (await answer(talker_reader, b"64:ff9b:1::7f00:1")).startswith(b"HTTP/1.1 200")
    # The handshake done, nothing said.
    assert TIMEOUT <= await closed_after(silent_reader, opened) < TIMEOUT + 3
    await asyncio.sleep(TIMEOUT)
    talker.write(REQUEST)
    assert (await answer(talker_reader, b"64:ff9b:1::7f00:1")).startswith(b"HTTP/1.1 200")
    silent.close()
    talker.close()
