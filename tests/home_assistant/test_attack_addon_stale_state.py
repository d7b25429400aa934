"""Attack: the add-on stopped between the import form and its check.

The import flow reads the add-on once, when the menu (or the discovered flow) opens, and keeps
that reading. Its check lets a refused forward pass when "the add-on holds the port", a repair
stopping it later; but that is asked of the old reading. A user who stops the add-on while the
form is open (or days after the flow was discovered) and submits it, while something else holds
the port, gets an entry whose port is somebody else's, and no repair: the add-on, asked anew
later, holds nothing. The Supervisor's client is mocked as in test_addon.py; the tunnel runs
against the real sshd.
"""

from __future__ import annotations

from typing import Any

import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import DOMAIN
from harness.flows import submit, suggested_values
from harness.supervisor import Addon, FakeSupervisor, our_addon

pytestmark = pytest.mark.usefixtures("ha_http_port")


@pytest.fixture
def addon(user_input: dict[str, Any]) -> Addon:
    """The add-on running with the entry's server and port, as the menu opens."""
    return our_addon(user_input, started=True)


@pytest.mark.usefixtures("port_thief")  # something else than the add-on holds the port
async def test_an_addon_stopped_since_the_form_opened_no_longer_excuses_a_refusal(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, addon: Addon
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    assert form["step_id"] == "import_addon"
    addon.started = False  # the user stops it, by hand, while the form is open

    confirm = await submit(hass, form, suggested_values(form))
    assert confirm["step_id"] == "confirm"
    result = await submit(hass, confirm, {})

    print(result["step_id"], result.get("errors"), on_supervisor.calls)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] != "addon_authorize", "the refusal was put on the stopped add-on"
    assert result["errors"] == {"base": "forward_refused"}
