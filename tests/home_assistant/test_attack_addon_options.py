"""Attack: an add-on named like ours whose options carry a hostile ssh_user and ssh_host.

The discovered flow takes its unique id from the add-on's options before any of the form's
checks: that id is listed with the flow in progress, sent to the frontend, and stored for good
in the entry the user's "Ignore" creates. The Supervisor's client is mocked as in test_addon.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, CONF_REMOTE_PORT, DOMAIN
from harness.supervisor import Addon, FakeSupervisor, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

# A user name no server has (over a megabyte), and a host with a terminal escape and a line
# break: neither passes the form's checks, both reach the discovered flow's id before them.
HOSTILE_USER = "a" * (1024 * 1024)
HOSTILE_HOST = "example.org\x1b[2J\nroot"
# A user name (256 at most in a directory), a host name (253) and two ports: far under this.
LONGEST_PLAUSIBLE_ID = 1024


@pytest.fixture
def on_supervisor(hass: HomeAssistant, user_input: dict[str, Any]) -> Iterator[FakeSupervisor]:
    options = {
        "ssh_host": HOSTILE_HOST,
        "ssh_port": user_input[CONF_PORT],
        "ssh_user": HOSTILE_USER,
        "remote_port": user_input[CONF_REMOTE_PORT],
        "private_key": user_input[CONF_PRIVATE_KEY],
    }
    supervisor = FakeSupervisor(
        installed=[Addon("f00dbabe_ssh_callhome", "SSH Call Home", options)]
    )
    with supervisor_install(hass, supervisor):
        yield supervisor


@pytest.mark.xfail(
    strict=True,
    reason="the discovered flow's unique id is made of the add-on's raw ssh_user and ssh_host, "
    "unchecked and unbounded; Ignore stores it in the config entries for good",
)
async def test_hostile_addon_options_never_reach_the_discovered_flows_id(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    flow_id = flows[0]["context"].get("unique_id") or ""
    ignored = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "ignore"}, data={"unique_id": flow_id, "title": "SSH Call Home"}
    )
    print(ignored["type"], f"unique id: {len(flow_id)} characters, {flow_id[-40:]!r}")
    stored = [entry.unique_id or "" for entry in hass.config_entries.async_entries(DOMAIN)]
    assert all(len(unique) <= LONGEST_PLAUSIBLE_ID for unique in stored), "stored unbounded"
    assert all(unique.isprintable() for unique in stored), "stored with control characters"
