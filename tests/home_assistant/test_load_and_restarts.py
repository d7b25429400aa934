"""Load through Home Assistant's own web server, and many server restarts in a row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import time
from functools import partial

import pytest
from aiohttp import web

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import PAGE, connected, fetch_through, running, tcp_tunnel
from harness.home_assistant import REPOSITORY
from harness.integration import load, state_of
from harness.logs import keep_log_capture_small
from harness.network import LOOPBACK, wait_until
from harness.openssh import OpenSSHServer
from harness.processes import resident_bytes

pytestmark = pytest.mark.slow

VISITORS = 200
MiB = 1024 * 1024


class EchoDigestView(HomeAssistantView):
    """Takes an upload and answers with as many random bytes, both digests in the headers."""

    url = "/api/test_load"
    name = "api:test_load"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        upload = await request.read()
        body = os.urandom(len(upload))
        headers = {
            "X-Digest-In": hashlib.sha256(upload).hexdigest(),
            "X-Digest-Out": hashlib.sha256(body).hexdigest(),
        }
        return web.Response(body=body, headers=headers)


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late a 10 ms sleep wakes up on Home Assistant's event loop."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append(time.perf_counter() - start - 0.01)


async def test_200_visitors_with_a_mebibyte_each_way(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keep_log_capture_small(caplog)
    hass.http.register_view(EchoDigestView())
    # Every visitor comes from 127.0.0.1, one address to the caps: room for all of them.
    room = {"max_connections": VISITORS, "max_connections_per_visitor": VISITORS}
    hass.config_entries.async_update_entry(entry, options={**entry.options, **room})
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    samples: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(loop_lag(samples, stop))
    url = f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}/api/test_load"
    visitors = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "harness.load_client",
        url,
        str(VISITORS),
        str(MiB),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(visitors.communicate(), 300)
    stop.set()
    await ticker
    outcome = json.loads(output)
    lag = sorted(samples)
    p50 = statistics.median(lag) * 1000
    p99 = lag[int(len(lag) * 0.99)] * 1000
    print(
        f"load: {VISITORS} visitors x 1 MiB each way in {outcome['seconds']} s, "
        f"{outcome['ok']} ok, {outcome['corrupt']} corrupt, errors {outcome['errors']}; "
        f"event-loop lag p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    assert outcome["ok"] == VISITORS
    assert outcome["corrupt"] == 0
    assert outcome["errors"] == []


async def test_fifty_server_restarts_at_random_moments(
    settings: TunnelSettings, openssh: OpenSSHServer
) -> None:
    tunnel = tcp_tunnel(settings)
    ups: list[float] = []
    tunnel.add_listener(
        lambda state: ups.append(time.monotonic()) if state.status is Status.CONNECTED else None
    )
    chance = random.Random(20261126)
    async with running(tunnel):
        for restarts in range(51):
            await wait_until(lambda: connected(tunnel), 10, "up again")
            assert tunnel.state.reconnects == restarts
            if restarts < 50:
                await asyncio.sleep(chance.uniform(0, 0.5))  # somewhere in the connection's life
                openssh.stop()
                openssh.start()
                await wait_until(lambda: not connected(tunnel), 3, "drop")
    assert len(ups) == 51  # every connection reported once, the first one and fifty more


def reconnected(tunnel: Tunnel, times: int) -> bool:
    return tunnel.state.reconnects == times


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_soak_300_reconnects_with_traffic_leaves_nothing_behind(
    settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    keep_log_capture_small(caplog)
    tunnel = tcp_tunnel(settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        assert await fetch_through(settings.remote_port) == PAGE  # warm every path once
        before = (open_files(), len(asyncio.all_tasks()), resident_bytes())
        started = time.monotonic()
        for cycle in range(1, 301):
            tunnel.request_reconnect()
            await wait_until(partial(reconnected, tunnel, cycle), 10, "reconnected")
            await wait_until(lambda: connected(tunnel), 10, "up")
            assert await fetch_through(settings.remote_port) == PAGE
        await wait_until(lambda: tunnel.stats.active_connections == 0, 5, "idle")
        after = (open_files(), len(asyncio.all_tasks()), resident_bytes())
    took = time.monotonic() - started
    print(
        f"soak: 300 reconnects with a request each in {took:.0f} s; open files {before[0]} -> "
        f"{after[0]}, tasks {before[1]} -> {after[1]}, RSS {before[2] / MiB:.1f} -> "
        f"{after[2] / MiB:.1f} MiB"
    )
    assert after[0] <= before[0] + 5
    assert after[1] <= before[1] + 2
    assert after[2] <= before[2] + 16 * MiB
