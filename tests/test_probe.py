"""The probe on its own, against a real OpenSSH server, and the view that answers it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncssh
import pytest

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.connection import TunnelSettings, open_connection
from custom_components.ssh_callhome.probe import ProbeResult, ProbeSpec, probe_public_path
from custom_components.ssh_callhome.probe_view import async_forget_probe, async_new_probe

from .helpers.network import LOOPBACK, SilentServer, free_port, serve_http

SPEC = ProbeSpec(path="/probe", answer=b"ours", timeout=0.5)


@pytest.fixture
async def connection(settings: TunnelSettings) -> AsyncIterator[asyncssh.SSHClientConnection]:
    async with await open_connection(settings) as conn:
        yield conn


async def test_our_answer_is_reachable_another_is_not(
    connection: asyncssh.SSHClientConnection,
) -> None:
    for body, expected in ((b"ours", ProbeResult.REACHABLE), (b"theirs", ProbeResult.WRONG_ANSWER)):
        port = free_port()
        runner = await serve_http(port, body)
        try:
            assert await probe_public_path(connection, LOOPBACK, port, SPEC) is expected
        finally:
            await runner.cleanup()


async def test_nothing_listening_is_unreachable(connection: asyncssh.SSHClientConnection) -> None:
    assert await probe_public_path(connection, LOOPBACK, free_port(), SPEC) is (
        ProbeResult.UNREACHABLE
    )


async def test_silence_is_unreachable(
    connection: asyncssh.SSHClientConnection, silent_server: SilentServer
) -> None:
    result = await probe_public_path(connection, LOOPBACK, silent_server.port, SPEC)
    assert result is ProbeResult.UNREACHABLE


async def test_view_answers_only_live_probes(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "ssh_callhome", {})
    spec, token = async_new_probe(hass, 300)
    client = await hass_client_no_auth()
    live = await client.get(spec.path)
    assert live.status == 200
    assert await live.read() == spec.answer
    assert (await client.get("/api/ssh_callhome/probe/guess")).status == 404
    async_forget_probe(hass, token)
    assert (await client.get(spec.path)).status == 404
