"""Attack: the add-on imported under an account of the tunnel's own, then Home Assistant starts.

docs/addon.md advises importing under an account of the tunnel's own, and says the discovered
flow "ends by itself when an entry already holds the add-on's tunnel". The flow's unique id is
the add-on's account, server, SSH port and remote port; the entry's holds the tunnel's account.
So once imported as advised, the add-on is offered again under Discovered at every start of Home
Assistant, and going through that flow makes a second entry for the same remote port on the
same server, which the first entry's tunnel holds (the two then take the port from each other
whenever one is down). The Supervisor's client is mocked as in test_addon.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY
from homeassistant.const import CONF_USERNAME
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    DOMAIN,
)
from harness.integration import load
from harness.openssh import OpenSSHServer

pytestmark = pytest.mark.usefixtures("ha_http_port")

# The account of the tunnel's own that the import named instead of the add-on's (root).
TUNNEL_ACCOUNT = "tunnel"


@pytest.fixture
def entry_data(openssh: OpenSSHServer, user_input: dict[str, Any]) -> dict[str, Any]:
    """The entry the import made: the add-on's server and remote port, the tunnel's account."""
    return {**user_input, CONF_USERNAME: TUNNEL_ACCOUNT, CONF_HOST_KEY: openssh.host_public_key}


# The conftest's on_supervisor: the add-on left installed and stopped, as the import leaves it.
@pytest.mark.usefixtures("on_supervisor")
async def test_no_discovery_once_the_addon_is_imported_under_another_account(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    discovered = [f for f in flows if f["context"]["source"] == SOURCE_INTEGRATION_DISCOVERY]
    print(discovered)
    assert discovered == []
