"""Attack: the add-on's repair confirmed after the add-on changed since the repair was raised.

The repair records the add-on's slug when it finds it holding the entry's port; its fix stops
that slug when confirmed, which may be much later. Meanwhile the user may have moved the add-on
to another port (it runs another tunnel now) while something else still holds the entry's port.
The Supervisor's client is mocked as in test_addon.py; the tunnel runs against the real sshd.
"""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import DOMAIN
from harness.integration import load
from harness.network import wait_until
from harness.supervisor import Addon, FakeSupervisor, our_addon

pytestmark = pytest.mark.usefixtures("ha_http_port")

# Bound of the wait for the repair on the real server, far above what it takes (under a second).
TUNNEL_WAIT = 10.0


@pytest.fixture
def addon(user_input: dict[str, Any]) -> Addon:
    """The add-on running with the entry's server and port (another session holds the port)."""
    return our_addon(user_input, started=True)


async def test_the_fix_leaves_an_addon_alone_that_no_longer_holds_the_port(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    on_supervisor: FakeSupervisor,
    addon: Addon,
    port_thief: asyncssh.SSHClientConnection,
    entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    issue_id = f"addon_holds_port_{entry.entry_id}"
    await wait_until(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
        TUNNEL_WAIT,
        "repair",
    )
    # Before the user gets to the repair: the add-on now runs a tunnel on another port; the
    # entry's port is still held (port_thief), so the refusal and the repair stay.
    addon.options["remote_port"] += 1
    http = await hass_client()
    form = await (
        await http.post("/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id})
    ).json()
    done = await (await http.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})).json()
    print(done, on_supervisor.calls, on_supervisor.changes)
    assert addon.started, "the add-on, now on another port, was stopped"
    assert on_supervisor.changes == [], "its start at boot was turned off"
