"""Options: keepalive, bind address, backoff cap and connection caps; saving reloads the engine
with them."""

from __future__ import annotations

import pytest

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.authorize import line_still_permits
from custom_components.ssh_callhome.const import (
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DEFAULT_OPTIONS,
)
from harness.flows import VALID_OPTIONS, suggested_values
from harness.integration import load
from harness.network import LOOPBACK

NUMBERS = [option for option in VALID_OPTIONS if option not in ("bind", "mode", "expose")]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"keepalive_interval": 4}, "keepalive_interval"),
        ({"keepalive_interval": 301}, "keepalive_interval"),
        ({"keepalive_count": 0}, "keepalive_count"),
        ({"keepalive_count": 11}, "keepalive_count"),
        ({"backoff_max": 9}, "backoff_max"),
        ({"backoff_max": 3601}, "backoff_max"),
        ({"probe_interval": 59}, "probe_interval"),
        ({"probe_interval": 3601}, "probe_interval"),
        ({"max_connections": 9}, "max_connections"),
        ({"max_connections": 1001}, "max_connections"),
        ({"max_connections_per_visitor": 5}, "max_connections_per_visitor"),
        ({"max_connections_per_visitor": 1001}, "max_connections_per_visitor"),
        ({"self_heal_after": -1}, "self_heal_after"),
        ({"self_heal_after": 11}, "self_heal_after"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 61}, "heartbeat_interval"),
        ({"mode": "tcp", "target_host": LOOPBACK, "target_port": 0}, "target_port"),
        ({"mode": "tcp", "target_host": LOOPBACK, "target_port": 65536}, "target_port"),
    ],
)
async def test_out_of_range_is_refused_by_the_form_then_saved(
    hass: HomeAssistant, entry: MockConfigEntry, changes: dict[str, int], field: str
) -> None:
    """The number box's own range: the flow manager refuses the field, nothing is saved."""
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    assert form["step_id"] == "init"
    with pytest.raises(InvalidData) as refused:
        await hass.config_entries.options.async_configure(
            form["flow_id"], {**VALID_OPTIONS, **changes}
        )
    assert set(refused.value.schema_errors) == {field}
    assert entry.options == DEFAULT_OPTIONS
    done = await hass.config_entries.options.async_configure(form["flow_id"], VALID_OPTIONS)
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        **VALID_OPTIONS,
        "target_host": "",
        "target_port": 0,
        "extra_forwards": "",
        "allowed_networks": "",
        "refused_networks": "",
        "public_url": "",
        "heartbeat_url": "",
    }
    assert all(type(entry.options[option]) is int for option in NUMBERS)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_form_as_shown_saves(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Without a TCP target the stored port is 0, which the port box refuses: it is left empty."""
    await load(hass, entry)
    for _ in range(2):  # the defaults, then the options this saved
        form = await hass.config_entries.options.async_init(entry.entry_id)
        shown = suggested_values(form)
        assert "target_port" not in shown
        done = await hass.config_entries.options.async_configure(form["flow_id"], shown)
        assert done["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
    assert entry.options["target_port"] == 0
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_saving_reloads_the_engine_with_the_options(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    before = entry.runtime_data.tunnel
    assert before.settings.bind_address == ""
    assert before.settings.keepalive_interval == 30
    form = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(form["flow_id"], VALID_OPTIONS)
    await hass.async_block_till_done()
    after = entry.runtime_data.tunnel
    assert after is not before
    assert not before.state.running
    assert after.settings.bind_address == LOOPBACK
    assert after.settings.keepalive_interval == 15
    assert after.settings.keepalive_count_max == 2
    assert after.settings.backoff.maximum == 60
    assert after.settings.probe is not None
    assert after.settings.probe.interval == 120
    assert after.settings.limits.total == 50
    assert after.settings.limits.per_visitor == 10
    assert after.settings.self_heal.after_failures == 5
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_tcp_target_needs_its_port(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    tcp = {**VALID_OPTIONS, "mode": "tcp", "target_host": " 127.0.0.1 "}
    bad = await hass.config_entries.options.async_configure(form["flow_id"], tcp)
    assert bad["errors"] == {"target_port": "invalid_port"}
    done = await hass.config_entries.options.async_configure(
        form["flow_id"], {**tcp, "target_port": 1883}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["target_host"] == "127.0.0.1"
    assert entry.options["target_port"] == 1883
    await hass.async_block_till_done()
    assert entry.runtime_data.tunnel.settings.target_port == 1883
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("target_host", ["nas\ud800", "nas box", "user@nas", "nas\x1b[2J"])
async def test_a_tcp_target_host_that_is_no_name_is_a_field_error(
    hass: HomeAssistant, entry: MockConfigEntry, target_host: str
) -> None:
    before = dict(entry.options)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    tcp = {**VALID_OPTIONS, "mode": "tcp", "target_host": target_host, "target_port": 1883}
    bad = await hass.config_entries.options.async_configure(form["flow_id"], tcp)
    assert bad["errors"] == {"target_host": "invalid_host"}
    assert entry.options == before


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/ping",
        "healthchecks.io/ping/abc",  # no scheme
        "https://",  # no host
        "https:///ping",
        "http://[::1",  # not a URL at all
        "javascript:alert(1)",
    ],
)
async def test_a_heartbeat_url_is_http_or_https_with_a_host(
    hass: HomeAssistant, entry: MockConfigEntry, url: str
) -> None:
    await load(hass, entry)
    before = dict(entry.options)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    bad = await hass.config_entries.options.async_configure(
        form["flow_id"], {**VALID_OPTIONS, "heartbeat_url": url}
    )
    assert bad["errors"] == {"heartbeat_url": "invalid_heartbeat_url"}
    assert entry.options == before
    good = "https://hc-ping.com/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    done = await hass.config_entries.options.async_configure(
        form["flow_id"], {**VALID_OPTIONS, "heartbeat_url": f" {good} "}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["heartbeat_url"] == good
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("software", "before", "after", "permits"),
    [
        ("openssh", {}, {"bind": "loopback"}, True),  # a bare port allows any address
        ("openssh", {"bind": "loopback"}, {"bind": "all"}, False),
        ("openssh", {}, {"extra_forwards": "2222:127.0.0.1:22"}, False),
        ("openssh", {"extra_forwards": "2222:127.0.0.1:22"}, {}, True),
        ("dropbear", {}, {"extra_forwards": "2222:127.0.0.1:22", "bind": "all"}, True),
    ],
)
def test_when_the_line_needs_replacing(
    software: str, before: dict[str, str], after: dict[str, str], permits: bool
) -> None:
    data = {CONF_REMOTE_PORT: 8123, CONF_SERVER_SOFTWARE: software}
    options_before, options_after = {**DEFAULT_OPTIONS, **before}, {**DEFAULT_OPTIONS, **after}
    assert line_still_permits(data, options_before, options_after) is permits
