"""Attack: the discovered flow imports the add-on as it was when Home Assistant started.

The discovered flow reads the add-on once, when Home Assistant has started, and keeps what it
read: it waits under Discovered for days. Meanwhile the user may give the add-on a new key (the
old one leaked, say) or remove the add-on. Opened then, the flow still fills in, checks and
stores the old key: a key the user retired comes back as the tunnel's, from an add-on that no
longer has it (or no longer exists). The server still takes the old key here, as it does until
its line is taken out. The Supervisor's client is mocked as in test_addon.py; the server is the
real sshd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import (
    ADDON_SLUG,
    CONF_PRIVATE_KEY,
    DOMAIN,
)
from harness.flows import submit, suggested_values
from harness.supervisor import OUR_SLUG, Addon, FakeSupervisor

pytestmark = pytest.mark.usefixtures("ha_http_port")

SLUG = "a0d7b954_ssh_callhome"
# The steps that follow the form and that a user submits as shown: the host key, the line.
PASSED_AS_SHOWN = ("confirm", "addon_authorize")
STEPS_AFTER_THE_FORM = len(PASSED_AS_SHOWN)


def _give_a_new_key(_supervisor: FakeSupervisor, addon: Addon) -> None:
    new_key = asyncssh.generate_private_key("ssh-ed25519")
    addon.options = {**addon.options, "private_key": new_key.export_private_key().decode()}


def _remove(supervisor: FakeSupervisor, _addon: Addon) -> None:
    supervisor.installed = []


@pytest.mark.parametrize("change", [_give_a_new_key, _remove], ids=["new_key", "removed"])
async def test_the_discovered_flow_imports_the_addon_as_it_is_now(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    addon: Addon,
    user_input: dict[str, Any],
    change: Callable[[FakeSupervisor, Addon], None],
) -> None:
    form = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_INTEGRATION_DISCOVERY}, data={ADDON_SLUG: OUR_SLUG}
    )
    assert form["step_id"] == "import_addon"
    change(on_supervisor, addon)  # days later, the user opens the discovered flow

    result = await submit(hass, form, suggested_values(form))
    for _ in range(STEPS_AFTER_THE_FORM):
        if result.get("step_id") not in PASSED_AS_SHOWN:
            break
        result = await submit(hass, result, {})

    print(result["type"], result.get("step_id"), result.get("reason"))
    if result["type"] is FlowResultType.CREATE_ENTRY:
        assert await hass.config_entries.async_unload(result["result"].entry_id)
        retired_key_stored = result["data"][CONF_PRIVATE_KEY] == user_input[CONF_PRIVATE_KEY]
        assert not retired_key_stored, "the entry holds the key the add-on no longer has"
