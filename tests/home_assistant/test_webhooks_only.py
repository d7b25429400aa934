"""Webhooks only: through the tunnel, Home Assistant's webhooks and nothing else; on Home
Assistant's own port, all of it. Real OpenSSH server, Home Assistant's real HTTP server, the
webhook component's own registry and handler."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from homeassistant.components import webhook
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_EXPOSE,
    CONF_MODE,
    CONF_REMOTE_PORT,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
    EXPOSE_HOME_ASSISTANT,
    EXPOSE_WEBHOOKS,
    MODE_TCP,
)
from harness.ha_http import start_home_assistant_http
from harness.integration import ENTRY_ID, REACHABLE, load, state_of
from harness.network import LOOPBACK, free_port, wait_until

# What Home Assistant sees for a visitor that reaches the server from 127.0.0.1 (addresses.py).
VISITOR = "64:ff9b:1::7f00:1"
LOCATION = b'{"latitude": 52.37, "longitude": 4.89}'


class Hook:
    """A webhook in Home Assistant's registry that records what reaches its handler."""

    def __init__(self, hass: HomeAssistant, webhook_id: str, *, local_only: bool) -> None:
        self.received: list[tuple[str | None, bytes]] = []
        self.path = webhook.async_generate_path(webhook_id)
        webhook.async_register(
            hass, "test", webhook_id, webhook_id, self._handle, local_only=local_only
        )

    async def _handle(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        self.received.append((request.remote, await request.read()))
        return web.json_response({"handled": webhook_id})


def tunnel_entry(hass: HomeAssistant, entry_data: dict[str, Any], exposure: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=f"root@{LOOPBACK}",
        data=entry_data,
        options={**DEFAULT_OPTIONS, CONF_EXPOSE: exposure},
        minor_version=ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    return entry


async def tunnel_up(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Load the entry, wait for the tunnel; returns the address visitors use."""
    assert await async_setup_component(hass, "webhook", {})
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    return f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}"


@pytest.fixture
async def webhooks_only(hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any]) -> str:
    """A tunnel that exposes webhooks only; the address visitors use."""
    return await tunnel_up(hass, tunnel_entry(hass, entry_data, EXPOSE_WEBHOOKS))


async def test_a_public_webhook_receives_a_post_through_the_tunnel(
    hass: HomeAssistant, webhooks_only: str
) -> None:
    hook = Hook(hass, "location-updates", local_only=False)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{webhooks_only}{hook.path}", data=LOCATION) as reply:
            assert reply.status == 200
            assert await reply.json() == {"handled": "location-updates"}
            assert reply.headers["Server"] == ""  # as Home Assistant: no versions given away
        async with session.delete(f"{webhooks_only}{hook.path}") as refused:
            assert refused.status == 405
    assert hook.received == [(VISITOR, LOCATION)]


async def test_webhooks_only_speaks_home_assistants_tls(
    hass: HomeAssistant, https_certificate: Path, entry_data: dict[str, Any]
) -> None:
    tunnel = await tunnel_up(hass, tunnel_entry(hass, entry_data, EXPOSE_WEBHOOKS))
    hook = Hook(hass, "ifttt", local_only=False)
    context = ssl.create_default_context(cafile=str(https_certificate))
    context.check_hostname = False
    https = tunnel.replace("http://", "https://")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{https}{hook.path}", data=LOCATION, ssl=context) as reply:
            assert reply.status == 200
        async with session.get(f"{https}/api/", ssl=context) as reply:
            assert reply.status == 404
    assert hook.received == [(VISITOR, LOCATION)]
    await wait_until(lambda: hass.states.is_state(REACHABLE, STATE_ON), 10, "probe answered")


async def test_webhooks_wait_for_home_assistants_http_server_as_on_its_port(
    socket_enabled: None, hass: HomeAssistant, entry_data: dict[str, Any]
) -> None:
    """Before it starts, integrations may not have registered their webhooks yet."""
    port = free_port()
    http = {"http": {"server_host": [LOOPBACK], "server_port": port}}
    assert await async_setup_component(hass, "http", http)
    tunnel = await tunnel_up(hass, tunnel_entry(hass, entry_data, EXPOSE_WEBHOOKS))
    hook = Hook(hass, "early-bird", local_only=False)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.post(f"{tunnel}{hook.path}", data=LOCATION)
        assert state_of(hass) == STATE_ON
        await hass.http.start()
        try:
            async with session.post(f"{tunnel}{hook.path}", data=LOCATION) as reply:
                assert reply.status == 200
        finally:
            await hass.http.stop()
    assert hook.received == [(VISITOR, LOCATION)]


async def test_a_local_only_webhook_refuses_the_tunnel_and_serves_the_home_network(
    hass: HomeAssistant, webhooks_only: str, ha_http_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    hook = Hook(hass, "garage-door", local_only=True)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{webhooks_only}{hook.path}", data=b"open") as reply:
            # The webhook component answers 200 either way, so as not to tell what exists.
            assert reply.status == 200
        assert hook.received == []
        assert "Received remote request for local webhook garage-door" in caplog.text
        direct = f"http://{LOOPBACK}:{ha_http_port}{hook.path}"
        async with session.post(direct, data=b"open") as reply:
            assert reply.status == 200
    assert hook.received == [(LOOPBACK, b"open")]


async def test_the_public_path_check_still_reaches_home_assistant(
    hass: HomeAssistant, webhooks_only: str
) -> None:
    await wait_until(lambda: hass.states.is_state(REACHABLE, STATE_ON), 10, "probe answered")


@pytest.fixture
async def proxy_trusting_http(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant believing X-Forwarded-For from every tunnelled visitor: a trust too wide."""
    yield await start_home_assistant_http(
        hass, use_x_forwarded_for=True, trusted_proxies=["64:ff9b:1::/48"]
    )
    await hass.http.stop()


@pytest.mark.parametrize(
    ("exposure", "posed_as_local"),
    [
        (EXPOSE_WEBHOOKS, False),
        (EXPOSE_HOME_ASSISTANT, True),  # the same request, with the option off
    ],
)
async def test_no_forwarded_header_makes_a_visitor_local(
    hass: HomeAssistant,
    proxy_trusting_http: int,
    entry_data: dict[str, Any],
    exposure: str,
    posed_as_local: bool,
) -> None:
    """Home Assistant's trust in proxies is not involved, nor the repair that warns of it."""
    entry = tunnel_entry(hass, entry_data, exposure)
    tunnel = await tunnel_up(hass, entry)
    hook = Hook(hass, "garage-door", local_only=True)
    async with (
        aiohttp.ClientSession(headers={"X-Forwarded-For": "192.168.1.50"}) as session,
        session.post(f"{tunnel}{hook.path}", data=b"open") as reply,
    ):
        assert reply.status == 200
    assert hook.received == ([("192.168.1.50", b"open")] if posed_as_local else [])
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"local_exposure_{entry.entry_id}")
    assert (issue is not None) is posed_as_local


@pytest.fixture
async def front_door(hass: HomeAssistant, hass_owner_user: Any) -> None:
    """Home Assistant's public faces: the frontend, the login page's providers, the websocket.

    With an owner, onboarding counts the user step done and the providers answer. Needs the
    frontend package: scripts/install-frontend puts it in .venv, not in the asyncssh 2.21.0
    virtualenv, whose run is about asyncssh.
    """
    pytest.importorskip("hass_frontend")
    assert await async_setup_component(hass, "frontend", {})


async def statuses(base: str, token: str) -> dict[str, int | str]:
    """What Home Assistant's front page, login providers, API and websocket answer at `base`."""
    found: dict[str, int | str] = {}
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/auth/providers", "/api/"):
            async with session.get(f"{base}{path}", headers=bearer) as reply:
                found[path] = reply.status
        try:
            async with session.ws_connect(f"{base}/api/websocket") as socket:
                found["/api/websocket"] = (await socket.receive_json())["type"]
        except aiohttp.WSServerHandshakeError as refused:
            found["/api/websocket"] = refused.status
    return found


ANSWERED: dict[str, int | str] = {
    "/": 200,
    "/auth/providers": 200,
    "/api/": 200,
    "/api/websocket": "auth_required",
}


@pytest.mark.parametrize(
    ("exposure", "through_the_tunnel"),
    [
        (EXPOSE_WEBHOOKS, dict.fromkeys(ANSWERED, 404)),
        # The same requests with the option off: they reach Home Assistant.
        (EXPOSE_HOME_ASSISTANT, ANSWERED),
    ],
)
async def test_everything_else_is_404_through_the_tunnel_and_answers_directly(
    hass: HomeAssistant,
    ha_http_port: int,
    entry_data: dict[str, Any],
    hass_access_token: str,
    front_door: None,
    exposure: str,
    through_the_tunnel: dict[str, int | str],
) -> None:
    tunnel = await tunnel_up(hass, tunnel_entry(hass, entry_data, exposure))
    assert await statuses(tunnel, hass_access_token) == through_the_tunnel
    assert await statuses(f"http://{LOOPBACK}:{ha_http_port}", hass_access_token) == ANSWERED


@pytest.fixture
async def banning_http(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant's HTTP server banning an address after one failed login."""
    port = await start_home_assistant_http(hass, ip_ban_enabled=True, login_attempts_threshold=1)
    yield port
    await hass.http.stop()
    # The harness shares one config directory between tests: no ban may outlive this one.
    Path(hass.config.path("ip_bans.yaml")).unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("exposure", "banned"),
    [
        (EXPOSE_WEBHOOKS, False),
        (EXPOSE_HOME_ASSISTANT, True),  # the same visitor, with the option off
    ],
)
async def test_failed_logins_through_the_tunnel_never_reach_the_bans(
    hass: HomeAssistant,
    banning_http: int,
    entry_data: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    exposure: str,
    banned: bool,
) -> None:
    tunnel = await tunnel_up(hass, tunnel_entry(hass, entry_data, exposure))
    hook = Hook(hass, "owntracks", local_only=False)
    wrong = {"Authorization": "Bearer not-a-token"}
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{tunnel}/api/", headers=wrong) as reply:
                await reply.read()
        async with session.post(f"{tunnel}{hook.path}", data=LOCATION) as reply:
            assert reply.status == (403 if banned else 200)
    assert ("Login attempt or request with invalid authentication" in caplog.text) is banned
    assert Path(hass.config.path("ip_bans.yaml")).exists() is banned
    assert hook.received == ([] if banned else [(VISITOR, LOCATION)])


async def test_webhooks_only_is_refused_over_tcp_and_saved_in_process(
    hass: HomeAssistant, entry: MockConfigEntry, hass_access_token: str
) -> None:
    """Over TCP this side never reads the requests, so it could not keep paths away."""
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    in_process = {**DEFAULT_OPTIONS, CONF_EXPOSE: EXPOSE_WEBHOOKS}
    del in_process[CONF_TARGET_PORT]  # no TCP target: the form leaves the port empty
    over_tcp = {**in_process, CONF_MODE: MODE_TCP, CONF_TARGET_HOST: LOOPBACK, CONF_TARGET_PORT: 1}
    refused = await hass.config_entries.options.async_configure(form["flow_id"], over_tcp)
    assert refused["errors"] == {CONF_EXPOSE: "webhooks_only_in_process"}
    assert entry.options == DEFAULT_OPTIONS
    saved = await hass.config_entries.options.async_configure(form["flow_id"], in_process)
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # saving reloads the entry
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on again")
    bearer = {"Authorization": f"Bearer {hass_access_token}"}
    api = f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}/api/"
    async with aiohttp.ClientSession() as session, session.get(api, headers=bearer) as reply:
        assert reply.status == 404
