"""Diagnostics: the engine's state, history and negotiated connection, with secrets redacted."""

from __future__ import annotations

import json
from typing import Any

import asyncssh
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import (
    CONF_EXTRA_FORWARDS,
    CONF_PUBLIC_URL,
    CONF_TARGET_HOST,
)
from custom_components.ssh_callhome.engine.keys import fingerprint, load_host_key
from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.integration import load, state_of
from harness.network import LOOPBACK, free_port, wait_until
from harness.openssh import OpenSSHServer

# Values that differ from run to run: times, ports, ids, the server's exact build.
VOLATILE = props(
    "entry_id",
    "created_at",
    "modified_at",
    "since",
    "port",
    "remote_port",
    "target",
    "target_port",
    "server_version",
)
# The asyncssh release differs between the pinned and the oldest allowed (CI runs both): the test
# checks it is the installed one, and the snapshot holds this in its place.
INSTALLED_ASYNCSSH = "<the installed asyncssh release>"


# Names of the user's own: machines of the home network.
NAS = "nas.home.arpa"


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
    ha_http_port: int,
    snapshot: SnapshotAssertion,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    extras = f"{free_port()}:{NAS}:22 proxy-v2\n{free_port()}:localhost:{ha_http_port}"
    # The server's public address (a loopback port where nothing answers: no DNS in tests).
    public_url = f"http://{LOOPBACK}:{free_port()}"
    options = {
        CONF_PUBLIC_URL: public_url,
        CONF_EXTRA_FORWARDS: extras,
        CONF_TARGET_HOST: "printer.home.arpa",
    }
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    diagnostics: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["asyncssh_version"] == asyncssh.__version__
    assert {**diagnostics, "asyncssh_version": INSTALLED_ASYNCSSH} == snapshot(exclude=VOLATILE)
    assert diagnostics["connection"]["server_version"].startswith("SSH-2.0-OpenSSH_")

    text = json.dumps(diagnostics)
    secrets = [
        *client_key.export_private_key().decode().splitlines()[1:-1],
        openssh.user + "@",
        fingerprint(load_host_key(openssh.host_public_key)),
        openssh.host_public_key.split()[1],
        public_url,
        "home.arpa",
        "localhost",
    ]
    assert [secret for secret in secrets if secret in text] == []


async def test_diagnostics_while_disconnected(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
) -> None:
    openssh.stop()
    assert await async_setup_component(hass, "diagnostics", {})
    await load(hass, entry)
    # The first attempt is refused at once, but a busy machine may not have run it yet.
    tunnel: Tunnel = entry.runtime_data.tunnel
    await wait_until(
        lambda: tunnel.state.status is Status.DISCONNECTED and tunnel.state.last_error is not None,
        10,
        "the first attempt failed",
    )
    diagnostics: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["connection"] == {}
    assert diagnostics["state"]["status"] == "disconnected"
    assert diagnostics["state"]["last_error"] in {"refused", "connection_lost"}
