"""TCP mode never carries visitors to Home Assistant's own web server from a local address.

The options form refuses TCP mode without a target, or with Home Assistant's own server by any
name, and saves another target, which then carries visitors. An entry stored that way before is
delivered in process: Home Assistant sees the visitor's stand-in, and a local-only user cannot
log in. Real OpenSSH server, Home Assistant's real HTTP server and login flow.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_MODE,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    MODE_TCP,
)
from harness.engine import PAGE
from harness.flows import VALID_OPTIONS
from harness.ha_http import load_with_remote_view, login, through, visitor
from harness.integration import load, state_of, tunnel_of
from harness.network import wait_until

ERROR = "tcp_target_is_home_assistant"
STRINGS = Path(__file__).parents[2] / "custom_components" / "ssh_callhome" / "strings.json"
# What Home Assistant sees for a visitor that reaches the server from 127.0.0.2 (addresses.py).
STAND_IN = "64:ff9b:1::7f00:2"
REFUSED_REMOTELY = {"message": "Login blocked: User cannot authenticate remotely"}
# Home Assistant's own web server as a user may type it in the form (the port: its own).
SPELLINGS = ["", "localhost", "127.0.0.1", "[::1]", "0.0.0.0", socket.gethostname()]


def tcp_options(host: str, port: int) -> dict[str, object]:
    """The form's answer for TCP mode to host:port; no host leaves the port box empty."""
    target = {CONF_TARGET_HOST: host, CONF_TARGET_PORT: port} if host else {}
    return {**VALID_OPTIONS, CONF_MODE: MODE_TCP, **target}


def test_the_error_is_translated() -> None:
    errors = json.loads(STRINGS.read_text())["options"]["error"]
    assert "Deliver connections to: Home Assistant" in errors[ERROR]


@pytest.mark.parametrize("host", SPELLINGS)
async def test_the_form_refuses_tcp_mode_to_home_assistant(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, host: str
) -> None:
    await load(hass, entry)
    engine = tunnel_of(entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    refused = await hass.config_entries.options.async_configure(
        form["flow_id"], tcp_options(host, ha_http_port)
    )
    assert refused["type"] is FlowResultType.FORM
    assert refused["errors"] == {CONF_MODE: ERROR}
    await hass.async_block_till_done()
    assert entry.options == DEFAULT_OPTIONS
    assert tunnel_of(entry) is engine  # not reloaded
    saved = await hass.config_entries.options.async_configure(form["flow_id"], VALID_OPTIONS)
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_another_tcp_target_is_saved_and_carries_visitors(
    hass: HomeAssistant, entry: MockConfigEntry, ha_http_port: int, http_backend: int
) -> None:
    """The same machine, another port: a service that is not Home Assistant's web server."""
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    options = tcp_options("127.0.0.1", http_backend)
    saved = await hass.config_entries.options.async_configure(form["flow_id"], options)
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    async with visitor("127.0.0.2") as session, session.get(through(entry, "/")) as reply:
        assert await reply.read() == PAGE
    assert tunnel_of(entry).settings.probe is None  # not Home Assistant: nothing to probe
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("host", ["", "localhost", "::1", socket.gethostname()])
async def test_a_stored_tcp_mode_entry_to_home_assistant_is_delivered_in_process(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    local_only_user: None,
    host: str,
) -> None:
    """Stored at the current version (no migration): the builder alone decides."""
    tcp = {CONF_MODE: MODE_TCP, CONF_TARGET_HOST: host, CONF_TARGET_PORT: ha_http_port}
    hass.config_entries.async_update_entry(entry, options={**entry.options, **tcp})
    await load_with_remote_view(hass, entry)
    assert entry.options[CONF_MODE] == MODE_TCP
    async with visitor("127.0.0.2") as session:
        async with session.get(through(entry, "/api/test_remote")) as reply:
            assert await reply.text() == STAND_IN
        assert await login(session, through(entry, ""), "correct-password-1") == (
            403,
            REFUSED_REMOTELY,
        )
    assert tunnel_of(entry).settings.probe is not None  # Home Assistant: the probe applies
    # Nothing is local any more: no repair about it.
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"local_exposure_{entry.entry_id}") is None
    assert await hass.config_entries.async_unload(entry.entry_id)
