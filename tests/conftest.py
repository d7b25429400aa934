"""Shared fixtures: keys, a real OpenSSH server and HTTP services behind the tunnel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
import asyncssh
import pytest

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome import config_flow as config_flow_module
from custom_components.ssh_callhome.backoff import BackoffPolicy
from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
)
from custom_components.ssh_callhome.engine_settings import TunnelSettings
from custom_components.ssh_callhome.flow_forms import unique_id
from custom_components.ssh_callhome.keys import generate_private_key, load_private_key

from .helpers.dropbear import DropbearServer
from .helpers.network import LOOPBACK, SilentServer, free_port, port_accepts, serve_http
from .helpers.openssh import OpenSSHServer
from .helpers.secrets import SecretRecorder, record_texts
from .helpers.ssh_server import LoopbackSSHServer

# Short delays so that recovery happens within a test's time.
FAST_BACKOFF = BackoffPolicy(initial=0.1, maximum=0.5, jitter=0.0, stable_after=5.0)
PAGE = b"served behind the tunnel\n" * 1000
# A fixed id keeps unique ids, and so snapshots, the same from run to run.
ENTRY_ID = "01JSSHCALLHOMETESTENTRY000"


def pytest_addoption(parser: pytest.Parser) -> None:
    """--run-slow: also the long load, fault and memory tests (CI runs them)."""
    parser.addoption("--run-slow", action="store_true", help="run the tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the slow tests unless asked for them."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components/."""


@pytest.fixture(scope="session")
def client_key() -> asyncssh.SSHKey:
    """The key Home Assistant logs in with."""
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def client_key_text(client_key: asyncssh.SSHKey) -> str:
    """The key as a user pastes it: OpenSSH format."""
    return client_key.export_private_key().decode()


@pytest.fixture
def authorized_line(client_key: asyncssh.SSHKey) -> str:
    """The client key's line in authorized_keys."""
    return client_key.export_public_key().decode().strip()


@pytest.fixture
def openssh(socket_enabled: None, tmp_path: Path, authorized_line: str) -> Iterator[OpenSSHServer]:
    """A running OpenSSH server that accepts the client key."""
    server = OpenSSHServer(tmp_path / "sshd", [authorized_line])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dropbear(
    socket_enabled: None, tmp_path: Path, authorized_line: str
) -> Iterator[DropbearServer]:
    """A running Dropbear server, with only an ed25519 host key, that accepts the client key."""
    server = DropbearServer(tmp_path / "dropbear", [authorized_line])
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["openssh", "dropbear"])
def any_server(request: pytest.FixtureRequest) -> LoopbackSSHServer:
    """Each real server the tunnel is tested against, in turn."""
    server: LoopbackSSHServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
async def http_backend(socket_enabled: None) -> AsyncIterator[int]:
    """A small HTTP service on a loopback port, standing in for what the tunnel carries."""

    port = free_port()
    runner = await serve_http(port, PAGE)
    yield port
    await runner.cleanup()


@pytest.fixture
async def silent_server(socket_enabled: None) -> AsyncIterator[SilentServer]:
    """A port that accepts connections and never says a word."""
    async with SilentServer() as server:
        yield server


def loopback_settings(
    server_port: int,
    username: str,
    client_key: asyncssh.SSHKey,
    host_key: asyncssh.SSHKey,
    target_port: int,
) -> TunnelSettings:
    """Engine settings for a server on loopback, with delays short enough for a test."""
    return TunnelSettings(
        host=LOOPBACK,
        port=server_port,
        username=username,
        client_key=client_key,
        host_key=host_key,
        remote_port=free_port(),
        target_host=LOOPBACK,
        target_port=target_port,
        bind_address=LOOPBACK,
        keepalive_interval=1.0,
        keepalive_count_max=2,
        connect_timeout=5.0,
        backoff=FAST_BACKOFF,
    )


def server_settings(
    server: LoopbackSSHServer, client_key: asyncssh.SSHKey, target_port: int
) -> TunnelSettings:
    """Engine settings for a real server of the tests, pinned to its host key."""
    host_key = asyncssh.import_public_key(server.host_public_key)
    return loopback_settings(server.port, server.user, client_key, host_key, target_port)


@pytest.fixture
def settings(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, http_backend: int
) -> TunnelSettings:
    """Engine settings for the OpenSSH server, forwarding to the HTTP service."""
    return server_settings(openssh, client_key, http_backend)


@pytest.fixture
def any_settings(
    any_server: LoopbackSSHServer, client_key: asyncssh.SSHKey, http_backend: int
) -> TunnelSettings:
    """Engine settings for each real server in turn, forwarding to the HTTP service."""
    return server_settings(any_server, client_key, http_backend)


@pytest.fixture
def user_input(openssh: OpenSSHServer, client_key_text: str) -> dict[str, Any]:
    """What a user enters in the first form for the OpenSSH server."""
    return {
        CONF_HOST: LOOPBACK,
        CONF_PORT: openssh.port,
        CONF_USERNAME: openssh.user,
        CONF_REMOTE_PORT: free_port(),
        CONF_PRIVATE_KEY: client_key_text,
    }


async def start_home_assistant_http(hass: HomeAssistant, **http_config: Any) -> int:
    """Home Assistant's own HTTP server, really listening on a new loopback port; returns the port.

    `http_config` adds to its `http:` configuration. Stop it with `hass.http.stop()`.
    """
    port = free_port()
    config = {"http": {"server_host": [LOOPBACK], "server_port": port, **http_config}}
    assert await async_setup_component(hass, "http", config)
    assert await async_setup_component(hass, "api", {})
    # The test harness replaces http's own start; start the real server here.
    await hass.http.start()
    assert await port_accepts(port)
    return port


@pytest.fixture
async def ha_http_port(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant's own HTTP server, really listening on a loopback port."""
    yield await start_home_assistant_http(hass)
    await hass.http.stop()


async def login(session: aiohttp.ClientSession, base: str, password: str) -> tuple[int, Any]:
    """Home Assistant's own login flow, as the frontend runs it."""
    client_id = f"{base}/"
    start = await session.post(
        f"{base}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": client_id,
        },
    )
    if start.status != 200:
        return start.status, await start.text()
    flow = await start.json()
    answer = await session.post(
        f"{base}/auth/login_flow/{flow['flow_id']}",
        json={"client_id": client_id, "username": "visitor", "password": password},
    )
    return answer.status, await answer.json()


@pytest.fixture
async def local_only_user(hass: HomeAssistant, local_auth: Any) -> None:
    assert await async_setup_component(hass, "auth", {})
    await local_auth.async_add_auth("visitor", "correct-password-1")
    credentials = await local_auth.async_get_or_create_credentials({"username": "visitor"})
    user = await hass.auth.async_get_or_create_user(credentials)
    await hass.auth.async_update_user(user, local_only=True)


@pytest.fixture
def entry_data(openssh: OpenSSHServer, user_input: dict[str, Any]) -> dict[str, Any]:
    return {**user_input, CONF_HOST_KEY: openssh.host_public_key}


@pytest.fixture
def entry(hass: HomeAssistant, ha_http_port: int, entry_data: dict[str, Any]) -> MockConfigEntry:
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=f"root@{LOOPBACK}",
        data=entry_data,
        # As the config flow creates it: every option stored.
        options=DEFAULT_OPTIONS,
        minor_version=ENTRY_MINOR_VERSION,
        unique_id=unique_id(entry_data),
    )
    config_entry.add_to_hass(hass)
    return config_entry


def keep_log_capture_small(caplog: pytest.LogCaptureFixture) -> None:
    """For tests that move much data or measure memory: the capture keeps every DEBUG record,
    some per packet, which would be the harness's growth rather than the tunnel's."""
    caplog.set_level(logging.INFO)
    logging.getLogger("asyncssh").setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def no_secret_leaks(
    caplog: pytest.LogCaptureFixture, client_key: asyncssh.SSHKey, client_key_text: str
) -> Iterator[SecretRecorder]:
    """Every test runs with DEBUG logging, asyncssh's included; no key or passphrase may show.

    Not in a log record of any phase (setup, the test itself, teardown), nor in what leaves
    Home Assistant otherwise: a flow's form, an event, a repair issue, diagnostics.
    """
    recorder = SecretRecorder()
    recorder.add_key(client_key)
    recorder.add_key_text(client_key_text)
    asyncssh_logger = logging.getLogger("asyncssh")
    previous_level = asyncssh_logger.level
    caplog.set_level(logging.DEBUG)
    asyncssh_logger.setLevel(logging.DEBUG)
    asyncssh.set_debug_level(2)
    with (
        patch.object(builder_module, "load_private_key", recorder.wrap_loader(load_private_key)),
        patch.object(
            config_flow_module,
            "generate_private_key",
            recorder.wrap_generator(generate_private_key),
        ),
        recorder.watching(),
    ):
        yield recorder
    asyncssh.set_debug_level(1)
    asyncssh_logger.setLevel(previous_level)
    for phase in ("setup", "call", "teardown"):
        recorder.check(f"log ({phase})", record_texts(caplog.get_records(phase)))
    assert recorder.found == {}
