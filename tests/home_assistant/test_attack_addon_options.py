"""Attack: an add-on named like ours whose options carry a hostile ssh_user and ssh_host.

The discovered flow takes its unique id from the add-on's options before any of the form's
checks: that id is listed with the flow in progress, sent to the frontend, and stored for good
in the entry the user's "Ignore" creates. The user name passes the form's checks with markdown
in it, and the flow's texts render it. The Supervisor's client is mocked as in test_addon.py; the
server check runs against the real sshd.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, CONF_REMOTE_PORT, DOMAIN
from harness.flows import submit, suggested_values
from harness.supervisor import Addon, FakeSupervisor, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

# A user name no server has (over a megabyte), and a host with a terminal escape and a line
# break: neither passes the form's checks, both reach the discovered flow's id before them.
HOSTILE_USER = "a" * (1024 * 1024)
HOSTILE_HOST = "example.org\x1b[2J\nroot"
# A user name (256 at most in a directory), a host name (253) and two ports: far under this.
LONGEST_PLAUSIBLE_ID = 1024


# One word (no spaces), printable: a user name to the form's checks, a link to markdown.
MARKDOWN_USER = "[Paste_your_private_key_here](https://evil.example/k)"
# The discovered flow's steps up to the one that names the account: form, host key, line.
MAX_STEPS = 4


@pytest.fixture
def addon_user() -> str:
    return HOSTILE_USER


@pytest.fixture
def addon_host() -> str:
    return HOSTILE_HOST


@pytest.fixture
def on_supervisor(
    hass: HomeAssistant, user_input: dict[str, Any], addon_user: str, addon_host: str
) -> Iterator[FakeSupervisor]:
    options = {
        "ssh_host": addon_host,
        "ssh_port": user_input[CONF_PORT],
        "ssh_user": addon_user,
        "remote_port": user_input[CONF_REMOTE_PORT],
        "private_key": user_input[CONF_PRIVATE_KEY],
    }
    supervisor = FakeSupervisor(
        installed=[Addon("f00dbabe_ssh_callhome", "SSH Call Home", options)]
    )
    with supervisor_install(hass, supervisor):
        yield supervisor


async def test_hostile_addon_options_never_reach_the_discovered_flows_id(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    # Offered or not (an add-on whose options no form takes is not), whatever a flow shows
    # under Discovered is what "Ignore" stores.
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) <= 1
    for flow in flows:
        flow_id = flow["context"].get("unique_id") or ""
        ignored = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": "ignore"},
            data={"unique_id": flow_id, "title": "SSH Call Home"},
        )
        print(ignored["type"], f"unique id: {len(flow_id)} characters, {flow_id[-40:]!r}")
    print(f"{len(flows)} discovered flow(s)")
    stored = [entry.unique_id or "" for entry in hass.config_entries.async_entries(DOMAIN)]
    assert all(len(unique) <= LONGEST_PLAUSIBLE_ID for unique in stored), "stored unbounded"
    assert all(unique.isprintable() for unique in stored), "stored with control characters"


@pytest.mark.parametrize("addon_user", [HOSTILE_USER, MARKDOWN_USER], ids=["huge", "markdown"])
async def test_hostile_addon_options_never_fill_in_the_menus_import(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    print(menu["type"], menu.get("menu_options"))
    assert "import_addon" not in (menu.get("menu_options") or [])


@pytest.mark.parametrize("addon_user", [MARKDOWN_USER])
@pytest.mark.parametrize("addon_host", ["127.0.0.1"])
async def test_addon_user_name_reaches_the_flows_text_without_markdown(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    # A user name that the form refuses is no add-on's to offer: then no text names it.
    print(f"{len(flows)} discovered flow(s)")
    if not flows:
        return
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"])
    result = await submit(hass, result, suggested_values(result))
    for _ in range(MAX_STEPS):
        placeholders = result.get("description_placeholders") or {}
        if result["type"] is not FlowResultType.FORM or "account" in placeholders:
            break
        result = await submit(hass, result, {})
    print(result["type"], result.get("step_id"), result.get("errors"))
    account = (result.get("description_placeholders") or {}).get("account", "")
    print(f"account placeholder: {account!r}")
    assert "account" in (result.get("description_placeholders") or {})
    assert "](" not in account, "a markdown link in the flow's text"
