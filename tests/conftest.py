"""Fixtures both layers' tests share: keys, real SSH servers, HTTP services behind the tunnel.

None of them is Home Assistant's: the engine's tests (tests/engine/) run without it. Home
Assistant's own fixtures (its HTTP server, a config entry, custom integrations enabled) are in
tests/home_assistant/conftest.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.dropbear import DropbearServer
from harness.engine import PAGE, server_settings
from harness.fault_server import FaultServer
from harness.network import SilentServer, free_port, serve_http
from harness.openssh import OpenSSHServer
from harness.rude_server import INJECTION
from harness.secrets import SecretRecorder, record_texts


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
async def fault_server(
    socket_enabled: None, client_key: asyncssh.SSHKey
) -> AsyncIterator[FaultServer]:
    """An in-process SSH server whose faults a test switches on and off."""
    server = FaultServer(client_key)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def rude_server(fault_server: FaultServer) -> FaultServer:
    """A server that sends every client away with a reason that tries to forge log lines."""
    fault_server.disconnect_reason = INJECTION
    return fault_server


@pytest.fixture
def settings(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, http_backend: int
) -> TunnelSettings:
    """Engine settings for the OpenSSH server, forwarding to the HTTP service."""
    return server_settings(openssh, client_key, http_backend)


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
    with recorder.watching():
        yield recorder
    asyncssh.set_debug_level(1)
    asyncssh_logger.setLevel(previous_level)
    for phase in ("setup", "call", "teardown"):
        recorder.check(f"log ({phase})", record_texts(caplog.get_records(phase)))
    assert recorder.found == {}
