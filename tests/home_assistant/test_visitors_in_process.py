"""Networks allowed and refused for connections handed to Home Assistant's own server, the
Refused visitors sensor, the event, diagnostics and the options form.

The test server has GatewayPorts no: sshd reports the loopback address each visitor connected
from, and every visitor here has one of its own.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from ipaddress import ip_network
from typing import Any
from unittest.mock import patch

from aiohttp import web

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.const import (
    CONF_REMOTE_PORT,
    DEFAULT_OPTIONS,
    EVENT_VISITOR_REFUSED,
)
from custom_components.ssh_callhome.engine import visitors as visitors_module
from custom_components.ssh_callhome.engine.probe import ProbeResult
from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.engine.visitors import MAX_ANNOUNCED_PER_INTERVAL
from harness.ha_http import load_with_remote_view
from harness.integration import REACHABLE, load, read_counters_now, tunnel_of
from harness.network import closed_at_once, connect_from, wait_until

REFUSED_SENSOR = "sensor.root_127_0_0_1_refused_visitors"
LISTS = {"allowed_networks": "127.0.0.0/29\n::1", "refused_networks": "127.0.0.5"}


class CountingView(HomeAssistantView):
    """Counts the requests that reach it."""

    url = "/api/test_visitors"
    name = "api:test_visitors"
    requires_auth = False

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, request: web.Request) -> web.Response:
        self.calls += 1
        return web.Response(text="in")


async def request_from(port: int, source: str) -> bytes:
    """A GET through the tunnel from `source`; what came back before the connection closed.

    A refused visitor's request may meet the closed connection: a reset, and nothing back.
    """
    reader, writer = await connect_from(port, source)
    writer.write(b"GET /api/test_visitors HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_refused_visitors_never_reach_home_assistant(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, entry: MockConfigEntry
) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, **LISTS})
    view = CountingView()
    hass.http.register_view(view)
    assert await async_setup_component(hass, "diagnostics", {})
    events = async_capture_events(hass, EVENT_VISITOR_REFUSED)
    await load_with_remote_view(hass, entry)
    port = entry.data[CONF_REMOTE_PORT]
    assert await request_from(port, "127.0.0.5") == b""  # refused list
    assert await request_from(port, "127.0.0.5") == b""  # again, within the minute
    assert await request_from(port, "127.0.0.9") == b""  # outside the allowed list
    assert view.calls == 0  # Home Assistant's view never ran
    assert (await request_from(port, "127.0.0.6")).endswith(b"\r\n\r\nin")
    assert view.calls == 1

    await read_counters_now(entry)
    state = hass.states.get(REFUSED_SENSOR)
    assert state is not None
    assert (state.state, state.attributes["state_class"]) == ("3", "total_increasing")
    assert tunnel_of(entry).stats.connections_refused == 0  # the caps refused nobody
    await hass.async_block_till_done()
    assert [event.data for event in events] == [
        {"entry_id": entry.entry_id, "address": "127.0.0.5"},
        {"entry_id": entry.entry_id, "address": "127.0.0.9"},
    ]

    diagnostics: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    refusals = diagnostics["visitors_refused"]
    assert [(r["address"], r["rule"]) for r in refusals] == [
        ("**REDACTED**", "in the refused networks"),
        ("**REDACTED**", "in the refused networks"),
        ("**REDACTED**", "not in the allowed networks"),
    ]
    text = json.dumps(diagnostics)
    assert "127.0.0.5" not in text
    assert "127.0.0.9" not in text
    assert await hass.config_entries.async_unload(entry.entry_id)


def submitted(**changes: str) -> dict[str, Any]:
    """The default options as the form submits them (no TCP target port), with `changes`."""
    return {
        **{option: value for option, value in DEFAULT_OPTIONS.items() if option != "target_port"},
        **changes,
    }


async def test_bad_lines_are_named_and_change_nothing(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    before = dict(entry.options)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    bad = submitted(allowed_networks="10.0.0.0/8\nhome", refused_networks="\n2001:db8::/129")
    shown = await hass.config_entries.options.async_configure(form["flow_id"], bad)
    assert shown["type"] is FlowResultType.FORM
    assert shown["errors"] == {
        "allowed_networks": "invalid_allowed_networks",
        "refused_networks": "invalid_refused_networks",
    }
    assert shown["description_placeholders"] == {
        "allowed_networks_line_number": "2",
        "allowed_networks_line": "home",
        "refused_networks_line_number": "2",
        "refused_networks_line": "2001:db8::/129",
    }
    assert entry.options == before
    good = submitted(allowed_networks="10.0.0.0/8\n::ffff:192.0.2.0/120", refused_networks="")
    done = await hass.config_entries.options.async_configure(form["flow_id"], good)
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    visitors = tunnel_of(entry).settings.limits.visitors
    assert visitors.allowed == (ip_network("10.0.0.0/8"), ip_network("192.0.2.0/24"))
    assert visitors.refused == ()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_form_warns_when_every_recent_visitor_was_local(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load_with_remote_view(hass, entry)
    tunnel = tunnel_of(entry)
    await wait_until(lambda: tunnel.state.reachability is ProbeResult.REACHABLE, 10, "checked")
    assert list(tunnel.visitors.recent_originators) == []  # the check is not a visitor
    port = entry.data[CONF_REMOTE_PORT]
    await request_from(port, "127.0.0.6")  # through the test server: a local originator
    assert list(tunnel.visitors.recent_originators) == ["127.0.0.6"]
    form = await hass.config_entries.options.async_init(entry.entry_id)
    assert form["errors"] == {}  # no lists, nothing to warn about
    lists = submitted(refused_networks="203.0.113.0/24")
    warned = await hass.config_entries.options.async_configure(form["flow_id"], lists)
    assert warned["type"] is FlowResultType.FORM
    assert warned["errors"] == {"base": "visitor_lists_cannot_apply"}
    assert entry.options == DEFAULT_OPTIONS
    saved = await hass.config_entries.options.async_configure(form["flow_id"], lists)
    assert saved["type"] is FlowResultType.CREATE_ENTRY  # saving is still possible
    await hass.async_block_till_done()
    assert entry.options["refused_networks"] == "203.0.113.0/24"

    await wait_until(lambda: tunnel_of(entry).state.status is Status.CONNECTED, 10, "back up")
    await request_from(port, "127.0.0.6")
    opened = await hass.config_entries.options.async_init(entry.entry_id)
    assert opened["errors"] == {"base": "visitor_lists_cannot_apply"}  # the lists are stored
    tunnel_of(entry).visitors.arrived("198.51.100.7")  # one visitor from the internet
    opened = await hass.config_entries.options.async_init(entry.entry_id)
    assert opened["errors"] == {}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_lists_that_refuse_the_servers_loopback_leave_the_check_unknown(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """The public-path check comes from the server's 127.0.0.1: not sent if it would be refused."""
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "allowed_networks": "127.0.0.6"}
    )
    hass.http.register_view(CountingView())
    await load_with_remote_view(hass, entry)
    await wait_until(lambda: tunnel_of(entry).state.reachability is not None, 10, "checked")
    state = hass.states.get(REACHABLE)
    assert state is not None
    assert (state.state, state.attributes["reason"]) == (STATE_UNKNOWN, "not_allowed")
    assert tunnel_of(entry).stats.visitors_refused == 0  # it was not sent
    assert (await request_from(entry.data[CONF_REMOTE_PORT], "127.0.0.6")).endswith(b"in")
    assert await hass.config_entries.async_unload(entry.entry_id)


# Long enough for the whole flood to fall in one or two intervals on a busy machine.
SHORT_INTERVAL = 3.0
FLOOD_VISITORS = 300


async def test_a_flood_of_refused_visitors_gives_bounded_events(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Each visitor from a loopback address of its own, all in the refused networks."""
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "refused_networks": "127.1.0.0/16"}
    )
    events = async_capture_events(hass, EVENT_VISITOR_REFUSED)
    port = entry.data[CONF_REMOTE_PORT]
    with patch.object(visitors_module, "ANNOUNCE_INTERVAL", SHORT_INTERVAL):
        await load_with_remote_view(hass, entry)
        started = time.monotonic()
        for visitor in range(1, FLOOD_VISITORS + 1):
            assert await closed_at_once(port, f"127.1.{visitor // 256}.{visitor % 256}")
        flood_seconds = time.monotonic() - started
        stats = tunnel_of(entry).stats
        await wait_until(lambda: stats.visitors_refused == FLOOD_VISITORS, 5, "all refused")
        await wait_until(lambda: events[-1].data["address"] is None, 2 * SHORT_INTERVAL, "summary")
    announced = [event.data for event in events if event.data["address"] is not None]
    summaries = [event.data for event in events if event.data["address"] is None]
    print(
        f"{FLOOD_VISITORS} visitors refused in {flood_seconds:.1f} s: "
        f"{len(announced)} events, {len(summaries)} summaries {summaries}"
    )
    intervals = math.ceil(flood_seconds / SHORT_INTERVAL) + 1  # the flood may straddle one
    assert len(announced) <= MAX_ANNOUNCED_PER_INTERVAL * intervals
    assert 1 <= len(summaries) <= intervals
    assert len(announced) + sum(s["not_announced"] for s in summaries) == FLOOD_VISITORS
    assert all(s.keys() == {"entry_id", "address", "not_announced"} for s in summaries)
    assert await hass.config_entries.async_unload(entry.entry_id)
