"""Attack: the add-on imported under an account of the tunnel's own, as the flow advises.

The add-on's `ssh_user` is often root or the user's own login, its key's line unrestricted. The
import's last step says "an account of the tunnel's own is better: start the import again, name
a new account, and the script creates it". Done so, the flow keeps the add-on's key, meets the
new account, shows the usual authorize step (whose script installs the restricted line for the
new account only) and creates the entry. Nothing ever mentions the key's old line: the entry's
key still opens a shell on the add-on's account (root here). The Supervisor's client is mocked
as in test_addon.py; the server is the real sshd, its keys file for root holding the add-on's
unrestricted line, the new account reading its own ~/.ssh/authorized_keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, DOMAIN
from harness.flows import shown_authorize_step, submit, suggested_values
from harness.openssh import OpenSSHServer
from harness.server_script_run import run_printing_only
from harness.supervisor import FakeSupervisor, our_addon, supervisor_with

pytestmark = pytest.mark.usefixtures("ha_http_port")


@pytest.fixture(params=["stopped", "running"])
def on_supervisor(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    new_account: str,
    request: pytest.FixtureRequest,
) -> Iterator[FakeSupervisor]:
    """The add-on logging in as the server's login account (root here), stopped or running.

    Running, it holds the remote port (a second SSH session stands in for it): the import's
    check must still pass, a repair stopping the add-on later.
    """
    running = request.param == "running"
    if running:  # after the server's restart for the new account, which would end the session
        request.getfixturevalue("port_thief")
    with supervisor_with(hass, our_addon(user_input, started=running)) as supervisor:
        yield supervisor


async def _opens_a_shell(server: OpenSSHServer, key: asyncssh.SSHKey) -> bool:
    """Whether `key` runs a command as the server's login account."""
    try:
        async with server.connect(key) as connection:
            result = await connection.run("true", check=False)
    except asyncssh.PermissionDenied:
        return False
    return result.exit_status == 0


@pytest.mark.usefixtures("on_supervisor")
async def test_an_import_under_a_new_account_leaves_no_shell_on_the_addons_account(
    hass: HomeAssistant, openssh: OpenSSHServer, new_account: str, tmp_path: Path
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    confirm = await submit(hass, form, {**suggested_values(form), CONF_USERNAME: new_account})
    assert confirm["step_id"] == "confirm"
    authorize, placeholders = await shown_authorize_step(hass, confirm)
    ran = run_printing_only(placeholders["script"], tmp_path)
    assert ran.returncode == 0
    created = await submit(hass, authorize, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY
    entry_key = asyncssh.import_private_key(created["data"][CONF_PRIVATE_KEY])
    assert await hass.config_entries.async_unload(created["result"].entry_id)

    assert not await _opens_a_shell(openssh, entry_key), "the entry's key opens root's shell"
