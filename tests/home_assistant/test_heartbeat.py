"""The heartbeat: a receiver on loopback sees it at the interval while home is reachable, never
while the tunnel is down or its check fails, and its failures are logged once a run."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import asyncssh
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import CONF_HEARTBEAT_URL, DEFAULT_OPTIONS
from custom_components.ssh_callhome.engine.probe import ProbeSpec
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.heartbeat import Heartbeat
from harness.engine import CHECK_ANSWER, running, server_settings, tcp_tunnel
from harness.integration import load
from harness.network import LOOPBACK, free_port, serve_http, wait_until
from harness.openssh import OpenSSHServer

INTERVAL = 0.4
# The secret part of a heartbeat URL (a healthchecks.io check's id, an ntfy topic).
SECRET = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class Receiver:
    """A heartbeat service on loopback: notes when each ping came, answers with `status`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/ping/{SECRET}"
        self.times: list[float] = []
        self.status = 200
        # Where an answer of 3xx sends the client.
        self.location = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def ping(_request: web.Request) -> web.Response:
            self.times.append(time.monotonic())
            headers = {"Location": self.location} if self.location else None
            return web.Response(status=self.status, text="OK", headers=headers)

        app = web.Application()
        app.router.add_get(f"/ping/{SECRET}", ping)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    service = Receiver()
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def checked_settings(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, answer_port: int
) -> TunnelSettings:
    probe = ProbeSpec(path="/probe", answer=CHECK_ANSWER, interval=0.2, timeout=0.5)
    return replace(server_settings(openssh, client_key, answer_port), probe=probe)


async def no_pings_for(receiver: Receiver, intervals: int) -> None:
    """Several intervals pass without a ping."""
    before = len(receiver.times)
    await asyncio.sleep(intervals * INTERVAL)
    assert len(receiver.times) == before


async def test_pings_at_the_interval_only_while_up_and_checked(
    hass: HomeAssistant,
    openssh: OpenSSHServer,
    checked_settings: TunnelSettings,
    answering: web.AppRunner,
    answer_port: int,
    receiver: Receiver,
) -> None:
    tunnel = tcp_tunnel(checked_settings)
    heartbeat = Heartbeat(hass, tunnel, receiver.url, timedelta(seconds=INTERVAL))
    tunnel.add_listener(heartbeat)
    async with running(tunnel):
        await wait_until(lambda: len(receiver.times) >= 4, 10, "four pings")
        gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
        # None early (the timer's own pace), and late only as far as a busy machine makes it.
        assert min(gaps) > INTERVAL * 0.7, gaps
        assert sum(gaps) / len(gaps) < INTERVAL * 1.5, gaps
        # The check fails (nothing answers behind the tunnel): the pings stop.
        await answering.cleanup()
        await wait_until(lambda: tunnel.state.failed_check is not None, 5, "check fails")
        assert tunnel.state.status is Status.CONNECTED
        await no_pings_for(receiver, 3)
        # It passes again: they come back at once.
        runner = await serve_http(answer_port, CHECK_ANSWER)
        try:
            count = len(receiver.times)
            await wait_until(lambda: len(receiver.times) >= count + 2, 5, "pings again")
        finally:
            await runner.cleanup()
        # The tunnel goes down: the pings stop.
        await answering.setup()  # the fixture cleans the runner up again
        openssh.stop()
        await wait_until(lambda: tunnel.state.status is not Status.CONNECTED, 10, "tunnel down")
        await no_pings_for(receiver, 3)
    heartbeat.async_stop()


async def test_a_failing_heartbeat_is_logged_once_and_spares_the_tunnel(
    hass: HomeAssistant,
    checked_settings: TunnelSettings,
    answering: web.AppRunner,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.status = 500
    tunnel = tcp_tunnel(checked_settings)
    heartbeat = Heartbeat(hass, tunnel, receiver.url, timedelta(seconds=INTERVAL / 2))
    tunnel.add_listener(heartbeat)
    async with running(tunnel):
        await wait_until(lambda: len(receiver.times) >= 4, 10, "four failed pings")
        receiver.status = 200
        count = len(receiver.times)
        await wait_until(lambda: len(receiver.times) >= count + 2, 5, "answered pings")
        assert tunnel.state.status is Status.CONNECTED
        assert tunnel.state.reconnects == 0
    heartbeat.async_stop()
    lines = [r for r in caplog.records if r.name.endswith(".heartbeat")]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.WARNING, f"Heartbeat to {LOOPBACK} failed: HTTP 500"),
        (logging.INFO, f"Heartbeat to {LOOPBACK} works again"),
    ]
    # The receiver's own access log names its path; nothing on Home Assistant's side does.
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert not any(SECRET in r.getMessage() for r in ours)


async def test_the_option_starts_the_heartbeat_with_the_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    receiver: Receiver,
) -> None:
    """Through the integration: Home Assistant's own HTTP server answers the check."""
    options = {**DEFAULT_OPTIONS, CONF_HEARTBEAT_URL: receiver.url}
    hass.config_entries.async_update_entry(entry, options=options)
    assert await async_setup_component(hass, "diagnostics", {})
    await load(hass, entry)
    # The first ping goes as soon as the check has passed, the next a few minutes later.
    await wait_until(lambda: len(receiver.times) == 1, 10, "first ping")
    assert entry.runtime_data.tunnel.state.check_passed
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert SECRET not in json.dumps(diagnostics)
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def inside(socket_enabled: None) -> AsyncIterator[Receiver]:
    """Another service on the home network, which a redirect must not reach."""
    service = Receiver()
    await service.start()
    yield service
    await service.stop()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_a_failure_and_not_followed(
    hass: HomeAssistant,
    checked_settings: TunnelSettings,
    answering: web.AppRunner,
    receiver: Receiver,
    inside: Receiver,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    receiver.status = status
    receiver.location = inside.url
    tunnel = tcp_tunnel(checked_settings)
    heartbeat = Heartbeat(hass, tunnel, receiver.url, timedelta(seconds=INTERVAL / 2))
    tunnel.add_listener(heartbeat)
    async with running(tunnel):
        await wait_until(lambda: len(receiver.times) >= 3, 10, "three redirected pings")
    heartbeat.async_stop()
    assert inside.times == []
    lines = [r for r in caplog.records if r.name.endswith(".heartbeat")]
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in lines] == [
        (
            logging.WARNING,
            f"Heartbeat to {LOOPBACK} failed: redirected (HTTP {status}), not followed",
            None,
        ),
    ]
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert not any(SECRET in r.getMessage() for r in ours)
