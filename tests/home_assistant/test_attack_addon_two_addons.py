"""Attack: two SSH Call Home add-ons installed, the one holding the port listed second.

A user who tried a fork keeps both: the fork stopped, the original running the old tunnel. The
integration reads the add-ons named like ours in the Supervisor's order and stops at the first
whose options are the add-on's: the stopped fork. That one holds no port, so the add-on that
does is never looked at, and the repair that would stop it is never raised. The Supervisor's
client is mocked as in test_addon.py; the tunnel runs against the real sshd.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import DOMAIN
from harness.flows import submit
from harness.integration import load
from harness.network import wait_until
from harness.supervisor import Addon, FakeSupervisor, addon_options, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

# Listed in the Supervisor's order (by repository): the local fork before the original.
FORK_SLUG = "local_ssh_callhome"
ORIGINAL_SLUG = "a0d7b954_ssh_callhome"
# Bound of the wait for the repair on the real server, far above what it takes (under a second).
TUNNEL_WAIT = 10.0


@pytest.fixture
def on_supervisor(hass: HomeAssistant, user_input: dict[str, Any]) -> Iterator[FakeSupervisor]:
    fork = Addon(FORK_SLUG, "SSH Call Home (fork)", addon_options(user_input), started=False)
    # The original runs, holding the entry's port (its SSH session is the port thief).
    original = Addon(ORIGINAL_SLUG, "SSH Call Home", addon_options(user_input), started=True)
    supervisor = FakeSupervisor(installed=[fork, original])
    with supervisor_install(hass, supervisor):
        yield supervisor


@pytest.mark.usefixtures("port_thief")
async def test_the_addon_holding_the_port_is_found_behind_a_stopped_one(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    issue_id = f"addon_holds_port_{entry.entry_id}"
    try:
        await wait_until(
            lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
            TUNNEL_WAIT,
            "repair",
        )
    finally:
        print(on_supervisor.calls)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.data is not None
    assert issue.data["slug"] == ORIGINAL_SLUG


async def test_the_running_addon_is_the_one_offered_for_import(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    assert form["description_placeholders"] == {"addon": "SSH Call Home"}
