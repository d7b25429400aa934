"""The Home Assistant layer's fixtures: its HTTP server, a config entry, the flows' input.

Every test here runs with custom integrations enabled, and the key's loaders watched for leaks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import asyncssh
import pytest
from aiohttp import web

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME, Platform
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome import PLATFORMS
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
from custom_components.ssh_callhome.flow_forms import unique_id
from harness.engine import CHECK_ANSWER
from harness.ha_http import start_home_assistant_http
from harness.integration import ENTRY_ID, load
from harness.network import LOOPBACK, free_port, serve_http
from harness.openssh import OpenSSHServer
from harness.scripted_tunnel import ScriptedTunnel
from harness.secrets import SecretRecorder
from harness.server_script import throwaway_account
from harness.supervisor import Addon, FakeSupervisor, our_addon, supervisor_with
from harness.tls import start_https


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components/."""


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


@pytest.fixture
def https_entry(
    hass: HomeAssistant, entry_data: dict[str, Any], https_certificate: Path
) -> MockConfigEntry:
    """An entry of the tunnel to Home Assistant's own server serving HTTPS itself."""
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, title="tunnel")
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms `init_integration` loads: all of them, unless a test narrows them."""
    return PLATFORMS


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, entry: MockConfigEntry, platforms: list[Platform]
) -> AsyncIterator[MockConfigEntry]:
    """The entry loaded with `platforms` only (until it unloads, which needs the same list)."""
    with patch("custom_components.ssh_callhome.PLATFORMS", platforms):
        await load(hass, entry)
        yield entry


@pytest.fixture
def scripted_engine() -> Iterator[None]:
    """Entries load a `ScriptedTunnel`, which connects nowhere: the test moves its state."""
    with patch("custom_components.ssh_callhome.Tunnel", ScriptedTunnel):
        yield


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Every entity enabled when it is registered, the ones disabled by default too."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture(autouse=True)
def no_secret_leaks(no_secret_leaks: SecretRecorder) -> Iterator[SecretRecorder]:
    """The shared check (tests/conftest.py), with the keys the integration loads and makes."""
    recorder = no_secret_leaks
    with (
        patch.object(builder_module, "load_private_key", recorder.wrap_loader(load_private_key)),
        patch.object(
            config_flow_module,
            "generate_private_key",
            recorder.wrap_generator(generate_private_key),
        ),
    ):
        yield recorder


@pytest.fixture
def new_account(openssh: OpenSSHServer) -> Iterator[str]:
    """A throwaway account reading its own ~/.ssh/authorized_keys, as on any server."""
    with throwaway_account() as name:
        openssh.extra_config = f"Match User {name}\n    AuthorizedKeysFile .ssh/authorized_keys\n"
        openssh.stop()
        openssh.start()
        yield name


@pytest.fixture
def addon(user_input: dict[str, Any]) -> Addon:
    """This project's add-on, stopped, set up with the server, account, port and key of the
    flows' input; a module whose add-on runs, or differs, has its own."""
    return our_addon(user_input)


@pytest.fixture
def on_supervisor(hass: HomeAssistant, addon: Addon) -> Iterator[FakeSupervisor]:
    """Home Assistant on a Supervisor (its client mocked) with the add-on installed."""
    with supervisor_with(hass, addon) as supervisor:
        yield supervisor
