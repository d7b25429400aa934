"""Attack: a hostile third-party add-on named like ours, with our option names.

Its name and options are chosen by its author, not by the user: they reach the discovered flow's
title, the import form's text (markdown), the repair, the `addon` attribute of *Last error*, and
the entry's stored data. The Supervisor's client is mocked as in test_addon.py; the server
check runs against the real sshd.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, DOMAIN
from custom_components.ssh_callhome.engine.server_text import SERVER_TEXT_LIMIT
from harness.flows import submit, suggested_values
from harness.integration import DEVICE, load
from harness.network import wait_until
from harness.supervisor import Addon, FakeSupervisor, addon_options, supervisor_install

pytestmark = pytest.mark.usefixtures("ha_http_port")

SLUG = "f00dbabe_ssh_callhome"
# Named like ours (letters of "sshcallhome" in a row once punctuation is dropped), then a line
# break, a markdown link and a heading that the frontend renders in the flow and the repair,
# a terminal escape, and padding beyond the cap of server text.
HOSTILE_NAME = (
    "SSH Call Home\n\n# Step 1: [paste your private key here](https://evil.example/k)"
    "\x1b[2J\u202e" + "A" * 300
)
LAST_ERROR = f"sensor.{DEVICE}_last_error"
TUNNEL_WAIT = 10.0
# An RSA key of 16384 bits, the largest anyone uses, is about 12.7 KB as OpenSSH writes it.
LARGEST_PLAUSIBLE_KEY = 16 * 1024
# What the hostile add-on appends after its key's END line: asyncssh ignores it.
KEY_PADDING = 4 * 1024 * 1024


@pytest.fixture
def hostile(user_input: dict[str, Any]) -> Addon:
    return Addon(SLUG, HOSTILE_NAME, addon_options(user_input))


@pytest.fixture
def on_supervisor(hass: HomeAssistant, hostile: Addon) -> Iterator[FakeSupervisor]:
    supervisor = FakeSupervisor(installed=[hostile])
    with supervisor_install(hass, supervisor):
        yield supervisor


def assert_safe_text(where: str, text: str) -> None:
    """One printable line, capped as server text is, with no markdown link to render."""
    print(f"{where}: {len(text)} characters, {text[:60]!r}...")
    assert all(char.isprintable() for char in text), where
    assert len(text) <= SERVER_TEXT_LIMIT, where
    assert "](" not in text, where


async def test_addon_name_reaches_the_flow_title_and_form_made_safe(
    hass: HomeAssistant, on_supervisor: FakeSupervisor
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert_safe_text("discovered flow title", flows[0]["context"]["title_placeholders"]["name"])
    form = await hass.config_entries.flow.async_configure(flows[0]["flow_id"])
    assert form["step_id"] == "import_addon"
    placeholders = form["description_placeholders"]
    assert placeholders is not None
    assert_safe_text("import form text", placeholders["addon"])


async def test_addon_name_reaches_the_repair_and_the_attribute_made_safe(
    hass: HomeAssistant,
    on_supervisor: FakeSupervisor,
    hostile: Addon,
    port_thief: asyncssh.SSHClientConnection,
    entry: Any,
) -> None:
    """The add-on 'runs' with the entry's server and port (another session holds the port)."""
    hostile.started = True
    assert await async_setup_component(hass, "repairs", {})
    await load(hass, entry)
    issue_id = f"addon_holds_port_{entry.entry_id}"
    await wait_until(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
        TUNNEL_WAIT,
        "repair",
    )
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    state = hass.states.get(LAST_ERROR)
    assert state is not None
    failures = []
    for where, text in (
        ("repair text", issue.translation_placeholders["addon"]),
        ("Last error's addon attribute", state.attributes["addon"]),
    ):
        try:
            assert_safe_text(where, text)
        except AssertionError as failure:
            failures.append(str(failure))
    assert failures == []


async def test_addon_key_with_megabytes_after_it_is_not_stored_as_is(
    hass: HomeAssistant, on_supervisor: FakeSupervisor, hostile: Addon
) -> None:
    """asyncssh ignores what follows a key's END line; the entry stored all of it."""
    hostile.options["private_key"] += "\n" + "x" * KEY_PADDING
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    form = await submit(hass, menu, {"next_step_id": "import_addon"})
    result = await submit(hass, form, suggested_values(form))
    # Confirm the host key, then the restricted line (bounded steps); a form with an error
    # ends the flow here: the key text was refused.
    for _ in range(3):
        if result["type"] is not FlowResultType.FORM or result["errors"]:
            break
        result = await submit(hass, result, {})
    if result["type"] is FlowResultType.CREATE_ENTRY:
        stored = result["data"][CONF_PRIVATE_KEY]
        print(f"stored key text: {len(stored)} characters")
        assert len(stored) <= LARGEST_PLAUSIBLE_KEY
        assert await hass.config_entries.async_unload(result["result"].entry_id)
    else:
        print(f"flow ended: {result['type']} {result.get('errors') or result.get('reason')}")
