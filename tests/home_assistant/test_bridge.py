"""Home Assistant's own HTTP server behind the tunnel, in process, with the visitor's address:
local-only users, bans, TLS, the websocket API, and a server that is not up yet."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT
from harness.engine import PAGE
from harness.ha_http import (
    load_with_remote_view,
    login,
    serve_file,
    start_home_assistant_http,
    through,
    visitor,
)
from harness.integration import state_of
from harness.logs import keep_log_capture_small
from harness.network import LOOPBACK, free_port, port_accepts, wait_until
from harness.processes import resident_bytes
from harness.tls import der_of


async def test_home_assistant_sees_each_visitor_apart_and_never_local(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int
) -> None:
    await load_with_remote_view(hass, entry)
    seen = {}
    for source in ("127.0.0.2", "127.0.0.3"):
        async with (
            visitor(source) as session,
            session.get(through(entry, "/api/test_remote")) as reply,
        ):
            seen[source] = await reply.text()
    assert seen == {"127.0.0.2": "64:ff9b:1::7f00:2", "127.0.0.3": "64:ff9b:1::7f00:3"}
    async with aiohttp.ClientSession() as session:
        direct = await session.get(f"http://{LOOPBACK}:{ha_http_port}/api/test_remote")
        assert await direct.text() == LOOPBACK


async def test_local_only_user_cannot_log_in_through_the_tunnel(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, local_only_user: None
) -> None:
    await load_with_remote_view(hass, entry)
    tunnel_base = f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}"
    async with visitor("127.0.0.2") as session:
        status, body = await login(session, tunnel_base, "correct-password-1")
    assert status == 403
    assert body == {"message": "Login blocked: User cannot authenticate remotely"}
    async with aiohttp.ClientSession() as session:
        status, body = await login(
            session, f"http://{LOOPBACK}:{ha_http_port}", "correct-password-1"
        )
    assert status == 200
    assert body["type"] == "create_entry"


@pytest.fixture
async def banning_http(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant's HTTP server with bans after two failed logins."""
    port = await start_home_assistant_http(hass, ip_ban_enabled=True, login_attempts_threshold=2)
    bans = Path(hass.config.path("ip_bans.yaml"))
    yield port
    await hass.http.stop()
    # The harness shares one config directory between tests: no ban may outlive this one.
    bans.unlink(missing_ok=True)


async def test_a_ban_hits_one_visitor_not_the_tunnel(
    hass: HomeAssistant, entry_data: dict[str, Any], banning_http: int, hass_access_token: str
) -> None:
    entry = MockConfigEntry(domain="ssh_callhome", data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    await load_with_remote_view(hass, entry)
    wrong = {"Authorization": "Bearer not-a-token"}
    right = {"Authorization": f"Bearer {hass_access_token}"}
    async with visitor("127.0.0.2") as attacker:
        for _ in range(3):
            await (await attacker.get(through(entry, "/api/"), headers=wrong)).read()
        banned = await attacker.get(through(entry, "/api/"), headers=right)
        assert banned.status == 403
    async with visitor("127.0.0.3") as friend:
        allowed = await friend.get(through(entry, "/api/"), headers=right)
        assert allowed.status == 200
    bans = Path(hass.config.path("ip_bans.yaml")).read_text()
    assert "64:ff9b:1::7f00:2" in bans
    assert "127.0.0.1" not in bans
    assert "64:ff9b:1::7f00:3" not in bans


async def test_https_through_the_tunnel_shows_home_assistants_certificate(
    hass: HomeAssistant, entry_data: dict[str, Any], https_certificate: Path
) -> None:
    entry = MockConfigEntry(domain="ssh_callhome", data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    await load_with_remote_view(hass, entry)
    context = ssl.create_default_context(cafile=str(https_certificate))
    context.check_hostname = False
    async with visitor("127.0.0.2") as session:
        reply = await session.get(through(entry, "/api/test_remote", "https"), ssl=context)
        assert reply.status == 200
        assert await reply.text() == "64:ff9b:1::7f00:2"
    _reader, writer = await asyncio.open_connection(
        LOOPBACK, entry.data[CONF_REMOTE_PORT], ssl=context
    )
    presented = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    assert presented == der_of(https_certificate)


async def test_websocket_api_through_the_tunnel(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, hass_access_token: str
) -> None:
    assert await async_setup_component(hass, "websocket_api", {})
    await load_with_remote_view(hass, entry)
    async with (
        visitor("127.0.0.2") as session,
        session.ws_connect(through(entry, "/api/websocket")) as ws,
    ):
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": hass_access_token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "tunnel_test"})
        assert (await ws.receive_json())["success"] is True
        hass.bus.async_fire("tunnel_test", {"through": "the tunnel"})
        event = await ws.receive_json(timeout=5)
        assert event["event"]["data"] == {"through": "the tunnel"}


async def test_channels_wait_for_the_http_server_and_the_tunnel_stays(
    socket_enabled: None, hass: HomeAssistant, entry_data: dict[str, Any]
) -> None:
    port = free_port()
    config = {"http": {"server_host": [LOOPBACK], "server_port": port}}
    assert await async_setup_component(hass, "http", config)
    entry = MockConfigEntry(domain="ssh_callhome", data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    await load_with_remote_view(hass, entry)
    async with visitor("127.0.0.2") as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(through(entry, "/api/test_remote"))
    assert state_of(hass) == STATE_ON
    await hass.http.start()
    assert await port_accepts(port)
    try:
        async with visitor("127.0.0.2") as session:
            reply = await session.get(through(entry, "/api/test_remote"))
            assert await reply.text() == "64:ff9b:1::7f00:2"
    finally:
        await hass.http.stop()


BIG = 256 * 1024 * 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """256 MiB of random bytes and their digest."""
    path = tmp_path_factory.mktemp("download") / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(BIG // (16 * MiB)):
            block = os.urandom(16 * MiB)
            digest.update(block)
            file.write(block)
    return path, digest.hexdigest()


@pytest.mark.slow
async def test_a_big_download_to_a_reader_that_stalls_keeps_memory_bounded(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    big_file: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    keep_log_capture_small(caplog)
    path, expected = big_file

    serve_file(hass, "/api/test_file", path)
    await load_with_remote_view(hass, entry)
    baseline, peak = resident_bytes(), 0
    digest = hashlib.sha256()
    received = 0
    stalled = False
    async with visitor("127.0.0.2") as session:
        reply = await session.get(through(entry, "/api/test_file"))
        async for chunk in reply.content.iter_chunked(MiB):
            digest.update(chunk)
            received += len(chunk)
            peak = max(peak, resident_bytes())
            if not stalled and received >= BIG // 2:
                stalled = True
                for _ in range(100):  # ten seconds of reading nothing
                    await asyncio.sleep(0.1)
                    peak = max(peak, resident_bytes())
    assert received == BIG
    assert digest.hexdigest() == expected
    growth = peak - baseline
    print(f"peak RSS growth during a 256 MiB download with a 10 s stall: {growth / MiB:.1f} MiB")
    assert growth < 16 * MiB


async def test_tcp_mode_to_another_target(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, http_backend: int
) -> None:
    tcp = {"mode": "tcp", "target_host": LOOPBACK, "target_port": http_backend}
    hass.config_entries.async_update_entry(entry, options={**entry.options, **tcp})
    await load_with_remote_view(hass, entry)
    async with visitor("127.0.0.2") as session:
        reply = await session.get(through(entry, "/"))
        assert await reply.read() == PAGE
    assert entry.runtime_data.tunnel.settings.probe is None  # not Home Assistant: nothing to probe


async def test_plain_http_to_a_tls_tunnel_costs_one_connection(
    hass: HomeAssistant, entry_data: dict[str, Any], https_certificate: Path
) -> None:
    entry = MockConfigEntry(domain="ssh_callhome", data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    await load_with_remote_view(hass, entry)
    reader, writer = await asyncio.open_connection(LOOPBACK, entry.data[CONF_REMOTE_PORT])
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the handshake failed: closed
    writer.close()
    assert state_of(hass) == STATE_ON
    await wait_until(lambda: entry.runtime_data.tunnel.stats.active_connections == 0, 5, "closed")


class DigestView(HomeAssistantView):
    """Reads an upload to its end and answers with its digest."""

    url = "/api/test_upload"
    name = "api:test_upload"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        async for chunk in request.content.iter_chunked(MiB):
            digest.update(chunk)
        return web.Response(text=digest.hexdigest())


@pytest.mark.slow
async def test_a_big_upload_arrives_intact(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    big_file: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    keep_log_capture_small(caplog)
    path, expected = big_file
    hass.http.register_view(DigestView())
    await load_with_remote_view(hass, entry)

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as file:
            while block := file.read(MiB):
                yield block

    async with visitor("127.0.0.2") as session:
        reply = await session.post(through(entry, "/api/test_upload"), data=chunks())
        assert await reply.text() == expected


async def test_a_visitor_that_resets_mid_download_leaves_nothing_behind(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, tmp_path: Path
) -> None:
    path = tmp_path / "eight.bin"
    path.write_bytes(os.urandom(8 * MiB))

    serve_file(hass, "/api/test_eight", path)
    await load_with_remote_view(hass, entry)
    stats = entry.runtime_data.tunnel.stats
    reader, writer = await asyncio.open_connection(LOOPBACK, entry.data[CONF_REMOTE_PORT])
    writer.write(b"GET /api/test_eight HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readexactly(MiB)
    writer.transport.abort()
    await wait_until(lambda: stats.active_connections == 0, 10, "channel gone")
    assert state_of(hass) == STATE_ON


async def test_home_assistant_closing_first_closes_the_channel(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int
) -> None:
    await load_with_remote_view(hass, entry)
    reader, writer = await asyncio.open_connection(LOOPBACK, entry.data[CONF_REMOTE_PORT])
    writer.write(b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 10)  # ends because the server closed
    writer.close()
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"64:ff9b:1::7f00:1")
    await wait_until(lambda: entry.runtime_data.tunnel.stats.active_connections == 0, 5, "closed")
