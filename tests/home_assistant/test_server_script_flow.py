"""The script the config flow shows, pasted into a root shell for real: then the flow completes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, DOMAIN
from harness.flows import submit
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer
from harness.server_script import DropInSSHServer, run_script
from harness.server_script_run import drop_in_sshd_for_a_new_account

pytestmark = pytest.mark.usefixtures("ha_http_port")


@pytest.fixture
def drop_in_sshd(socket_enabled: None, tmp_path: Path) -> Iterator[DropInSSHServer]:
    with drop_in_sshd_for_a_new_account(tmp_path / "sshd") as server:
        yield server


async def authorize_step(hass: HomeAssistant, server: dict[str, Any]) -> ConfigFlowResult:
    """A generated key's flow up to the step that shows its line and the script."""
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "generate_key"})
    confirm = await submit(hass, form, server)
    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] == "authorize"
    return authorize


async def test_the_shown_script_authorizes_the_generated_key(
    hass: HomeAssistant, drop_in_sshd: DropInSSHServer
) -> None:
    server = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: drop_in_sshd.port,
        CONF_USERNAME: drop_in_sshd.user,
        CONF_REMOTE_PORT: free_port(),
    }
    authorize = await authorize_step(hass, server)
    placeholders = authorize["description_placeholders"] or {}
    not_yet = await submit(hass, authorize, {})
    assert not_yet["errors"] == {"base": "invalid_auth"}

    pasted = run_script(placeholders["script"], **drop_in_sshd.script_environment)
    print(pasted.stdout, pasted.stderr)
    assert pasted.returncode == 0, pasted.stderr
    assert f"\n{placeholders['settings']}\n" in drop_in_sshd.drop_in.read_text()
    drop_in_sshd.stop()  # what the reload does: the drop-in in force from now on
    drop_in_sshd.start()
    created = await submit(hass, not_yet, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(created["result"].entry_id)


async def test_an_account_name_the_script_cannot_carry_is_refused_by_the_form(
    hass: HomeAssistant, openssh: OpenSSHServer
) -> None:
    """The form takes only names the script can carry; the script's own refusal of the others
    is tested in tests/engine/test_server_script.py."""
    hostile = "it's$(id)"
    server = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: openssh.port,
        CONF_USERNAME: hostile,
        CONF_REMOTE_PORT: free_port(),
    }
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "generate_key"})
    refused = await submit(hass, form, server)
    assert refused["type"] is FlowResultType.FORM
    assert refused["errors"] == {CONF_USERNAME: "invalid_username"}
