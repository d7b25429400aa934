"""Shared fixtures: keys, a real OpenSSH server and HTTP services behind the tunnel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import asyncssh
import pytest
from aiohttp import web

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import builder as builder_module
from custom_components.ssh_callhome import config_flow as config_flow_module
from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
)
from custom_components.ssh_callhome.engine.keys import generate_private_key, load_private_key
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.flow_forms import unique_id
from harness.dropbear import DropbearServer
from harness.engine import CHECK_ANSWER, PAGE, server_settings
from harness.fault_server import FaultServer
from harness.ha_http import start_home_assistant_http
from harness.integration import ENTRY_ID
from harness.network import LOOPBACK, SilentServer, free_port, serve_http
from harness.openssh import OpenSSHServer
from harness.secrets import SecretRecorder, record_texts
from harness.ssh_server import LoopbackSSHServer
from harness.tls import start_https


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


@pytest.fixture
def answer_port() -> int:
    """Where a tunnel with a check delivers: a service that gives the check its answer."""
    return free_port()


@pytest.fixture
async def answering(socket_enabled: None, answer_port: int) -> AsyncIterator[web.AppRunner]:
    """That service, running (a test may stop and start it)."""
    runner = await serve_http(answer_port, CHECK_ANSWER)
    yield runner
    await runner.cleanup()


@pytest.fixture
async def fault_server(
    socket_enabled: None, client_key: asyncssh.SSHKey
) -> AsyncIterator[FaultServer]:
    """An in-process SSH server whose faults a test switches on and off."""
    server = FaultServer(client_key)
    await server.start()
    yield server
    await server.stop()


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


@pytest.fixture
async def port_thief(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, user_input: dict[str, Any]
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Another session holding the remote port of `user_input` (and `entry`) on the server."""
    async with openssh.holding_remote_port(client_key, user_input[CONF_REMOTE_PORT]) as thief:
        yield thief


@pytest.fixture
async def ha_http_port(socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[int]:
    """Home Assistant's own HTTP server, really listening on a loopback port."""
    yield await start_home_assistant_http(hass)
    await hass.http.stop()


@pytest.fixture
async def https_certificate(
    socket_enabled: None, hass: HomeAssistant, tmp_path: Path
) -> AsyncIterator[Path]:
    """Home Assistant's own HTTP server serving HTTPS itself; yields its certificate."""
    yield await start_https(hass, tmp_path / "home_assistant")
    await hass.http.stop()


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
