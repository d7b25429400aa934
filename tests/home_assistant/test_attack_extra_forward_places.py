"""Attack: visitors of an extra TCP forward hold every place of the tunnel, for as long as the
target keeps a silent connection, and Home Assistant's own forward refuses everybody.

The caps are one gate for every forward of the tunnel (tunnel.py). A connection of an extra
forward is never closed for a newcomer (fair places cannot tell whether it is idle), and after
its first byte it has no timer at all (an SSH shell or an MQTT client may rightly be quiet).
So five IPv4 addresses (total 100 / per-visitor 20), one byte per connection to a target that
keeps quiet connections (a broker waiting for a CONNECT, a raw TCP service), hold every place
for good; fair places cannot give one of them to a visitor of Home Assistant. Real OpenSSH,
Home Assistant's real HTTP server, a real silent TCP target. Now extra forwards hold at most
half the total (limits.py, EXTRA_FORWARDS_SHARE): the rest are refused, Home Assistant keeps
the other half.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from functools import partial
from unittest.mock import patch

import aiohttp
import pytest

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome.const import CONF_EXTRA_FORWARDS
from custom_components.ssh_callhome.engine.limits import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
    ConnectionLimits,
)
from harness.ha_http import load_with_remote_view, through, visitor
from harness.integration import state_of, tunnel_of
from harness.logs import keep_log_capture_small
from harness.network import LOOPBACK, SilentServer, connect_from, free_port, wait_until

HOLDERS = [
    f"127.0.0.{10 + index}"
    for index in range(DEFAULT_MAX_CONNECTIONS // DEFAULT_MAX_CONNECTIONS_PER_VISITOR)
]
FRESH = "127.0.0.99"
# The first-request timer and stall bound here: the holders outlast both several times.
SHORT = 1.0
HELD_FOR = 4 * SHORT
# A fresh visitor of Home Assistant, served at once in the other tests, waits at most this.
SERVED_WITHIN = 5.0


@pytest.fixture
def short_timers() -> Iterator[None]:
    shorter = partial(ConnectionLimits, first_request_timeout=SHORT, stall_timeout=SHORT)
    with patch.object(builder_module, "ConnectionLimits", shorter):
        yield


@pytest.fixture
async def silent_target(socket_enabled: None) -> AsyncIterator[SilentServer]:
    async with SilentServer() as server:
        yield server


async def fresh_visitor_served(entry: MockConfigEntry) -> str:
    """'' when a fresh visitor gets Home Assistant's answer in time, else what happened."""
    try:
        async with (
            asyncio.timeout(SERVED_WITHIN),
            visitor(FRESH) as session,
            session.get(through(entry, "/api/test_remote")) as reply,
        ):
            await reply.read()
            return "" if reply.status == 200 else f"status {reply.status}"
    except (TimeoutError, aiohttp.ClientError) as error:  # refused: closed without a word
        return f"{type(error).__name__}: {error}"


async def test_extra_forward_visitors_do_not_lock_home_assistant_out(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    silent_target: SilentServer,
    short_timers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keep_log_capture_small(caplog)
    extra = free_port()
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_EXTRA_FORWARDS: f"{extra}:{LOOPBACK}:{silent_target.port}",
        },
    )
    await load_with_remote_view(hass, entry)
    stats = tunnel_of(entry).stats
    sensor = f"binary_sensor.root_127_0_0_1_forward_{extra}"
    await wait_until(lambda: state_of(hass, sensor) == STATE_ON, 10, "extra forward up")
    held_tried = len(HOLDERS) * DEFAULT_MAX_CONNECTIONS_PER_VISITOR
    async with AsyncExitStack() as held:
        for source in HOLDERS:
            for _ in range(DEFAULT_MAX_CONNECTIONS_PER_VISITOR):
                _reader, writer = await connect_from(extra, source)
                held.callback(writer.transport.abort)
                writer.write(b"\x10")  # an MQTT CONNECT's first byte, and nothing after it
        # Every holder's connection is in: with a place, or refused (before the fix, all held).
        await wait_until(
            lambda: stats.active_connections + stats.connections_refused >= held_tried,
            10,
            "every holder's connection admitted or refused",
        )
        await asyncio.sleep(HELD_FOR)  # past the first-request timer and the stall bound
        still_held = stats.active_connections
        failure = await fresh_visitor_served(entry)
    print(
        f"{len(HOLDERS)} addresses tried {held_tried} connections, hold {still_held} places "
        f"after {HELD_FOR:.0f} s; "
        f"a fresh visitor of Home Assistant: {failure or 'served'}"
    )
    assert failure == ""
