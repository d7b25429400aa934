"""Reconfiguring an entry: server, account, remote port or key, each error then recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DOMAIN,
)
from harness.flows import submit
from harness.network import free_port
from harness.openssh import OpenSSHServer

pytestmark = pytest.mark.usefixtures("ha_http_port")


def server_fields(entry: MockConfigEntry) -> dict[str, Any]:
    return {
        k: v
        for k, v in entry.data.items()
        if k not in (CONF_PRIVATE_KEY, CONF_PASSPHRASE, CONF_HOST_KEY)
    }


async def finished(hass: HomeAssistant, result: ConfigFlowResult) -> None:
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()


async def test_new_remote_port_keeps_key_and_pinned_host(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    form = await entry.start_reconfigure_flow(hass)
    assert form["step_id"] == "reconfigure"
    new_port = free_port()
    with pytest.raises(InvalidData) as refused:
        await submit(hass, form, {**server_fields(entry), CONF_REMOTE_PORT: 70000})
    assert set(refused.value.schema_errors) == {CONF_REMOTE_PORT}
    old_key = entry.data[CONF_PRIVATE_KEY]
    await finished(
        hass, await submit(hass, form, {**server_fields(entry), CONF_REMOTE_PORT: new_port})
    )
    assert entry.data[CONF_REMOTE_PORT] == new_port
    assert entry.data[CONF_PRIVATE_KEY] == old_key
    assert entry.unique_id == f"{openssh.user}@127.0.0.1:{openssh.port}:{new_port}"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_new_key_replaces_the_old(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    new_key = asyncssh.generate_private_key("ssh-ed25519")
    new_text = new_key.export_private_key("openssh", "reconfigured passphrase", rounds=16).decode()
    form = await entry.start_reconfigure_flow(hass)
    wrong = await submit(hass, form, {**server_fields(entry), CONF_PRIVATE_KEY: new_text})
    assert wrong["errors"] == {CONF_PASSPHRASE: "wrong_passphrase"}
    rejected = await submit(
        hass,
        wrong,
        {
            **server_fields(entry),
            CONF_PRIVATE_KEY: new_text,
            CONF_PASSPHRASE: "reconfigured passphrase",
        },
    )
    assert rejected["step_id"] == "authorize"
    assert rejected["errors"] == {"base": "invalid_auth"}
    openssh.set_authorized_keys([(rejected["description_placeholders"] or {})["line"]])
    await finished(hass, await submit(hass, rejected, {}))
    assert entry.data[CONF_PRIVATE_KEY] == new_text
    assert entry.data[CONF_PASSPHRASE] == "reconfigured passphrase"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_new_server_confirms_its_host_key(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    tmp_path: Path,
    authorized_line: str,
) -> None:
    other = OpenSSHServer(tmp_path / "other", [authorized_line])
    other.start()
    try:
        form = await entry.start_reconfigure_flow(hass)
        down = await submit(hass, form, {**server_fields(entry), CONF_PORT: free_port()})
        assert down["errors"] == {"base": "cannot_connect"}
        confirm = await submit(hass, down, {**server_fields(entry), CONF_PORT: other.port})
        assert confirm["step_id"] == "confirm"
        await finished(hass, await submit(hass, confirm, {}))
        assert entry.data[CONF_PORT] == other.port
        assert entry.data[CONF_HOST_KEY] == other.host_public_key
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        other.stop()


async def test_taken_unique_id_is_refused(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    taken_port = free_port()
    MockConfigEntry(
        domain=DOMAIN, unique_id=f"{openssh.user}@127.0.0.1:{openssh.port}:{taken_port}"
    ).add_to_hass(hass)
    form = await entry.start_reconfigure_flow(hass)
    taken = await submit(hass, form, {**server_fields(entry), CONF_REMOTE_PORT: taken_port})
    assert taken["errors"] == {"base": "already_configured"}
    await finished(
        hass, await submit(hass, taken, {**server_fields(entry), CONF_HOST: "127.0.0.1"})
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_same_server_keeps_its_software_a_new_one_is_looked_at(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    # Stored by the flow that met the server; a reconfigure that stays with it does not ask again.
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_SERVER_SOFTWARE: "dropbear"}
    )
    fields = {k: v for k, v in server_fields(entry).items() if k != CONF_SERVER_SOFTWARE}
    form = await entry.start_reconfigure_flow(hass)
    await finished(hass, await submit(hass, form, {**fields, CONF_REMOTE_PORT: free_port()}))
    assert entry.data[CONF_SERVER_SOFTWARE] == "dropbear"
    # Another address of the same machine counts as a new server: its banner is read again.
    form = await entry.start_reconfigure_flow(hass)
    confirm = await submit(hass, form, {**fields, CONF_HOST: "localhost"})
    assert confirm["step_id"] == "confirm"
    await finished(hass, await submit(hass, confirm, {}))
    assert entry.data[CONF_SERVER_SOFTWARE] == "openssh"
