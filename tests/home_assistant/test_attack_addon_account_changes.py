"""Attack: the import's account changed back and forth while the server cannot be reached.

Naming another account than the add-on's makes a new key (once per flow); naming the add-on's
takes the add-on's key. The form comes back after an error (the server not reached, a typo in
its port), and the user may change the account each time. Changed to another account, back to
the add-on's, and to another again: the flow keeps the add-on's key for the tunnel (the key is
generated only once, and not taken again) while the entry's data holds the generated one. The
authorize step then shows, and its script installs, the add-on's key on the new account; the
check passes with it, and the entry is stored with a key that the server never saw.
The Supervisor's client is mocked as in test_addon.py; the server is the real sshd.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, DOMAIN
from harness.flows import submit, suggested_values
from harness.network import free_port
from harness.server_script import key_blob, run_script
from harness.supervisor import Addon, FakeSupervisor, addon_options, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

SLUG = "a0d7b954_ssh_callhome"


@pytest.fixture
def on_supervisor(hass: HomeAssistant, user_input: dict[str, Any]) -> Iterator[FakeSupervisor]:
    """The add-on, stopped, logging in as the server's login account (root here)."""
    options = addon_options(user_input)
    supervisor = FakeSupervisor(installed=[Addon(SLUG, "SSH Call Home", options, started=False)])
    with supervisor_install(hass, supervisor):
        yield supervisor


@pytest.mark.usefixtures("on_supervisor")
async def test_the_key_the_import_shows_is_the_key_it_stores(
    hass: HomeAssistant,
    new_account: str,
    tmp_path: Path,
    user_input: dict[str, Any],
    client_key: asyncssh.SSHKey,
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    addons = suggested_values(form)
    unreachable = free_port()  # nothing listens there: the form comes back with an error
    for account in (new_account, addons[CONF_USERNAME]):
        form = await submit(hass, form, {**addons, CONF_USERNAME: account, CONF_PORT: unreachable})
        assert form["step_id"] == "import_addon", "the form did not come back"
        assert form["errors"], "no error"
    confirm = await submit(hass, form, {**addons, CONF_USERNAME: new_account})
    assert confirm["step_id"] == "confirm"
    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] == "authorize"
    placeholders = authorize["description_placeholders"]
    assert placeholders is not None
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\n")  # no Include: the script only prints the Match block
    ran = run_script(placeholders["script"], SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(tmp_path))
    print(ran.returncode, ran.stdout, ran.stderr)
    created = await submit(hass, authorize, {})
    assert created["type"] is FlowResultType.CREATE_ENTRY, created
    entry_key = asyncssh.import_private_key(created["data"][CONF_PRIVATE_KEY])
    assert await hass.config_entries.async_unload(created["result"].entry_id)

    stored = key_blob(entry_key.export_public_key().decode())
    shown = key_blob(placeholders["line"])
    addons_key = key_blob(client_key.export_public_key().decode())
    print(f"shown {shown}, stored {stored}, the add-on's {addons_key}")
    assert shown != addons_key, "the add-on's key was shown for the new account"
    assert stored == shown, "the entry holds a key the server was never given"
