"""An extra forward to Home Assistant's own HTTP server goes in process, never over TCP.

Over TCP every visitor would arrive from 127.0.0.1: local-only users log in from the internet,
and Webhooks only on the main forward would not hold on the extra port. Real OpenSSH server,
Home Assistant's real HTTP server and login flow, the webhook component's own registry.
"""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any

import asyncssh
import pytest
from aiohttp import web

from homeassistant.components import webhook
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.builder import async_engine_input
from custom_components.ssh_callhome.const import (
    CONF_EXPOSE,
    CONF_EXTRA_FORWARDS,
    CONF_HOST_KEY,
    CONF_MODE,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    EXPOSE_WEBHOOKS,
    MODE_TCP,
)
from custom_components.ssh_callhome.engine.keys import load_host_key
from custom_components.ssh_callhome.own_server import async_is_home_assistant_http
from harness.ha_http import RemoteView, login, visitor
from harness.integration import load, state_of, tunnel_of
from harness.network import LOOPBACK, free_port, wait_until

# What Home Assistant sees for a visitor that reaches the server from 127.0.0.2 (addresses.py).
STAND_IN = "64:ff9b:1::7f00:2"
REFUSED_REMOTELY = {"message": "Login blocked: User cannot authenticate remotely"}

# Home Assistant's own server, spelt every way a line may spell it (its port added by the test).
SPELLINGS = [
    "127.0.0.1",
    "127.0.0.2",  # all of 127.0.0.0/8 is this machine
    "127.1",  # the resolver reads inet_aton's short forms as a connection would
    "2130706433",
    "0x7f.1",
    "localhost",
    "LocalHost.",
    "ha.localhost",  # RFC 6761: every name under localhost is loopback
    "::1",
    "::ffff:127.0.0.1",
    "0.0.0.0",  # a connection to the wildcard reaches this machine
    "::",
    "0",
    "homeassistant",  # the Supervisor network's name for Home Assistant
    "HomeAssistant",
]
# Not Home Assistant's server: another machine (TEST-NET-2), and a name that does not resolve.
NOT_HOME_ASSISTANT = ["198.51.100.7", "nothing-here.invalid"]


def _own_addresses() -> list[str]:
    """This machine's addresses other than loopback (with a link-local one's scope)."""
    try:
        listed = subprocess.run(
            ["ip", "-j", "addr"], capture_output=True, check=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [
        f"{info['local']}%{link['ifname']}" if info.get("scope") == "link" else info["local"]
        for link in json.loads(listed)
        for info in link.get("addr_info", [])
        if info.get("scope") != "host"
    ]


@pytest.mark.parametrize("host", [*SPELLINGS, socket.gethostname(), *_own_addresses()])
async def test_every_spelling_of_home_assistants_server_is_recognised(
    hass: HomeAssistant, ha_http_port: int, host: str
) -> None:
    assert await async_is_home_assistant_http(hass, host, ha_http_port)
    assert not await async_is_home_assistant_http(hass, host, ha_http_port + 1)


@pytest.mark.parametrize("host", NOT_HOME_ASSISTANT)
async def test_other_machines_are_not_home_assistant(
    hass: HomeAssistant, ha_http_port: int, host: str
) -> None:
    assert not await async_is_home_assistant_http(hass, host, ha_http_port)


async def test_the_names_home_assistant_listens_on_are_its_own(
    socket_enabled: None, hass: HomeAssistant
) -> None:
    """As `http: server_host` names them (not started: the name needs not resolve here)."""
    port = free_port()
    config = {"server_host": ["ha.home.arpa", "198.51.100.7"], "server_port": port}
    assert await async_setup_component(hass, "http", {"http": config})
    assert await async_is_home_assistant_http(hass, "HA.home.arpa.", port)
    assert await async_is_home_assistant_http(hass, "198.51.100.7", port)


async def test_each_line_to_home_assistant_is_given_the_in_process_target(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, client_key: asyncssh.SSHKey
) -> None:
    """What the entry already holds counts as much as a new line: the builder decides."""
    lines = [f"{1000 + n}:{host}:{ha_http_port}" for n, host in enumerate(SPELLINGS)]
    others = [f"{2000 + n}:{host}:{ha_http_port}" for n, host in enumerate(NOT_HOME_ASSISTANT)]
    options = {**entry.options, CONF_EXTRA_FORWARDS: "\n".join(lines + others)}
    host_key = load_host_key(entry.data[CONF_HOST_KEY])
    engine = await async_engine_input(hass, entry.data, options, (client_key, host_key))
    in_process = {f.remote_port for f in engine.settings.extra_forwards if f.in_process}
    assert in_process == set(range(1000, 1000 + len(SPELLINGS)))


async def with_extra_forward(
    hass: HomeAssistant, entry: MockConfigEntry, line: str, **options: Any
) -> None:
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_EXTRA_FORWARDS: line, **options}
    )
    hass.http.register_view(RemoteView())
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    remote_port = int(line.partition(":")[0])
    await wait_until(
        lambda: remote_port in tunnel_of(entry).state.extra_forwards_up, 10, "extra forward up"
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"])
async def test_a_local_only_user_cannot_log_in_through_an_extra_forward(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    local_only_user: None,
    host: str,
) -> None:
    extra = free_port()
    await with_extra_forward(hass, entry, f"{extra}:{host}:{ha_http_port}")
    base = f"http://{LOOPBACK}:{extra}"
    async with visitor("127.0.0.2") as session:
        async with session.get(f"{base}/api/test_remote") as reply:
            assert await reply.text() == STAND_IN
        assert await login(session, base, "correct-password-1") == (403, REFUSED_REMOTELY)


async def test_a_tcp_mode_entry_keeps_its_extra_forward_in_process(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, local_only_user: None
) -> None:
    """TCP mode to another target: the extra forward to Home Assistant is in process still."""
    extra = free_port()
    tcp_elsewhere = {CONF_MODE: MODE_TCP, CONF_TARGET_HOST: "198.51.100.7", CONF_TARGET_PORT: 80}
    await with_extra_forward(hass, entry, f"{extra}:localhost:{ha_http_port}", **tcp_elsewhere)
    async with visitor("127.0.0.2") as session:
        status, body = await login(session, f"http://{LOOPBACK}:{extra}", "correct-password-1")
    assert (status, body) == (403, REFUSED_REMOTELY)


async def test_with_webhooks_only_an_extra_forward_serves_webhooks_only(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, hass_access_token: str
) -> None:
    assert await async_setup_component(hass, "webhook", {})
    received: list[str | None] = []

    async def handle(_hass: HomeAssistant, _id: str, request: web.Request) -> None:
        received.append(request.remote)

    webhook.async_register(hass, "test", "hook", "hook-id", handle, local_only=False)
    extra = free_port()
    line = f"{extra}:127.0.0.1:{ha_http_port}"
    await with_extra_forward(hass, entry, line, **{CONF_EXPOSE: EXPOSE_WEBHOOKS})
    bearer = {"Authorization": f"Bearer {hass_access_token}"}
    async with visitor("127.0.0.2") as session:
        for path in ("/", "/auth/providers", "/api/", "/api/test_remote"):
            async with session.get(f"http://{LOOPBACK}:{extra}{path}", headers=bearer) as reply:
                assert reply.status == 404, path
        async with session.post(f"http://{LOOPBACK}:{extra}/api/webhook/hook-id") as reply:
            assert reply.status == 200
        # Home Assistant's own port still serves it all.
        direct = f"http://{LOOPBACK}:{ha_http_port}/api/"
        async with session.get(direct, headers=bearer) as reply:
            assert reply.status == 200
    assert received == [STAND_IN]
