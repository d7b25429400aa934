"""Attack: two SSH Call Home add-ons, neither running, the one listed first never configured.

The import offers one add-on: the running one, else the first listed. Only then are its
options checked, and an add-on whose options no form takes is not offered. A fork installed to
try and never set up (its options empty, as a fresh install leaves them) listed before the
user's own add-on, stopped for the move, then hides that one: no import in the menu, nothing
discovered, though one add-on's options are all there. The Supervisor's client is mocked as in
test_addon.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.ssh_callhome.const import DOMAIN
from harness.supervisor import Addon, FakeSupervisor, addon_options, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

# Listed in the Supervisor's order (by repository): the local fork before the original.
FORK_SLUG = "local_ssh_callhome"
ORIGINAL_SLUG = "a0d7b954_ssh_callhome"
# What a fresh install's options hold before the user fills them in.
UNCONFIGURED = {
    "ssh_host": "",
    "ssh_port": 22,
    "ssh_user": "",
    "remote_port": 8123,
    "private_key": "",
}


@pytest.fixture
def on_supervisor(hass: HomeAssistant, user_input: dict[str, Any]) -> Iterator[FakeSupervisor]:
    configured = addon_options(user_input)
    fork = Addon(FORK_SLUG, "SSH Call Home (fork)", dict(UNCONFIGURED), started=False)
    original = Addon(ORIGINAL_SLUG, "SSH Call Home", configured, started=False)
    supervisor = FakeSupervisor(installed=[fork, original])
    with supervisor_install(hass, supervisor):
        yield supervisor


@pytest.mark.usefixtures("on_supervisor")
async def test_the_configured_addon_is_offered_in_the_menu(hass: HomeAssistant) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    assert "import_addon" in menu["menu_options"]


@pytest.mark.usefixtures("on_supervisor")
async def test_the_configured_addon_is_discovered(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    sources = [flow["context"]["source"] for flow in flows]
    assert sources == [SOURCE_INTEGRATION_DISCOVERY]
