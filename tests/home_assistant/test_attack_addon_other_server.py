"""Attack: the add-on imported onto another server, under an account of the same name.

Naming another account than the add-on's `ssh_user` makes a new key, because the add-on's key
keeps its unrestricted line where the add-on logged in, which the script for the tunnel's
account never touches. The flow compares the account's name only: a user who moves to a new
server while importing (another host or SSH port, and `root` or their own login there too)
keeps the add-on's key. Its unrestricted line stays on the old server, and the entry holds it
after the add-on is removed. Here the add-on's server and the new one are two real sshds on
loopback; the new one does not know the add-on's key yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant

from custom_components.ssh_callhome.const import DOMAIN
from harness.flows import submit, suggested_values
from harness.openssh import OpenSSHServer
from harness.server_script import key_blob

pytestmark = pytest.mark.usefixtures("ha_http_port")


@pytest.fixture
def new_server(socket_enabled: None, tmp_path: Path) -> Iterator[OpenSSHServer]:
    """The server the user moves to: no key of the add-on's in it yet."""
    server = OpenSSHServer(tmp_path / "new_sshd", [])
    server.start()
    yield server
    server.stop()


# The conftest's on_supervisor: the add-on, stopped, logging in to the old server (`openssh`).
@pytest.mark.usefixtures("on_supervisor")
async def test_an_import_onto_another_server_gets_a_key_of_its_own(
    hass: HomeAssistant, new_server: OpenSSHServer, client_key: asyncssh.SSHKey
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    confirm = await submit(hass, form, {**suggested_values(form), CONF_PORT: new_server.port})
    assert confirm["step_id"] == "confirm"
    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] in ("authorize", "authorize_dropbear"), authorize
    placeholders = authorize["description_placeholders"]
    assert placeholders is not None

    shown = key_blob(placeholders["line"])
    addons_key = key_blob(client_key.export_public_key().decode())
    assert shown != addons_key, "the add-on's key is the one to authorize on the new server"
