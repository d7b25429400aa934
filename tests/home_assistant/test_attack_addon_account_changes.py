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

from pathlib import Path
from typing import Any

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, DOMAIN
from harness.flows import shown_authorize_step, submit, suggested_values
from harness.network import free_port
from harness.server_script import key_blob
from harness.server_script_run import run_printing_only

pytestmark = pytest.mark.usefixtures("ha_http_port")


# The conftest's on_supervisor: the add-on, stopped, logging in as the server's login
# account (root here).
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
    authorize, placeholders = await shown_authorize_step(hass, confirm)
    run_printing_only(placeholders["script"], tmp_path)
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
