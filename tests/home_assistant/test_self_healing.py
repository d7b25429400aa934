"""Self-healing: a forward that silently carries nothing is reconnected, at most once per gap."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from ssl import create_default_context as ssl_context
from typing import Any
from unittest.mock import patch

import aiohttp
import asyncssh
import pytest
from aiohttp import web

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.ssh_callhome.const import (
    CONF_HOST_KEY,
    CONF_PRIVATE_KEY,
    CONF_PROBE_INTERVAL,
    CONF_REMOTE_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    EVENT_SELF_HEALED,
)
from custom_components.ssh_callhome.engine.healing import SelfHealPolicy
from custom_components.ssh_callhome.engine.probe import ProbeSpec
from custom_components.ssh_callhome.engine.public_url import PublicUrlCheck
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import TunnelState
from custom_components.ssh_callhome.logbook import async_describe_events
from harness.engine import CHECK_ANSWER, loopback_settings, running, tcp_tunnel
from harness.fault_server import FaultServer
from harness.integration import load
from harness.network import LOOPBACK, free_port, wait_until

# A check every 0.1 s; one that meets silence gives up after 0.3 s.
FAST_CHECK = ProbeSpec(path="/probe", answer=CHECK_ANSWER, interval=0.1, timeout=0.3)
GAP = 900.0


class SteppedClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def checked_settings(
    fault_server: FaultServer,
    client_key: asyncssh.SSHKey,
    answer_port: int,
    answering: web.AppRunner,
    clock: SteppedClock,
) -> TunnelSettings:
    host_key = fault_server.host_key.convert_to_public()
    settings = loopback_settings(fault_server.port, "tunnel", client_key, host_key, answer_port)
    policy = SelfHealPolicy(after_failures=3, min_gap=GAP, clock=clock)
    return replace(settings, probe=FAST_CHECK, self_heal=policy)


async def test_black_holed_forward_is_reconnected_at_most_once_per_gap(
    fault_server: FaultServer,
    checked_settings: TunnelSettings,
    clock: SteppedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tunnel = tcp_tunnel(checked_settings)
    # How many checks had met the black hole when each reconnect, and the hold, was decided.
    failures_at: dict[tuple[int, bool], int] = {}

    def on_change(state: TunnelState) -> None:
        decision = (state.self_heals, state.self_heal_held_back)
        failures_at.setdefault(decision, fault_server.black_holed)

    tunnel.add_listener(on_change)
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.check_passed, 10, "check passes")
        fault_server.black_hole = True
        await wait_until(lambda: tunnel.state.self_heals == 1, 10, "first reconnect")
        assert failures_at[(1, False)] == 3
        assert tunnel.state.self_heal_reason == "unreachable"
        await wait_until(lambda: len(fault_server.connections) == 2, 10, "new connection")
        # The new connection fails its checks as well: the gap holds the next reconnect back.
        await wait_until(lambda: tunnel.state.self_heal_held_back, 10, "held back")
        held_at = failures_at[(1, True)]
        assert held_at == 6
        await wait_until(lambda: fault_server.black_holed >= held_at + 4, 10, "more failures")
        assert tunnel.state.self_heals == 1
        assert len(fault_server.connections) == 2
        # Once the gap has passed, the next failure reconnects again.
        clock.now += GAP
        await wait_until(lambda: tunnel.state.self_heals == 2, 10, "second reconnect")
        assert failures_at[(2, True)] >= held_at + 4
        await wait_until(lambda: len(fault_server.connections) == 3, 10, "third connection")
        # The way in works again: the check passes and nothing is held back any more.
        fault_server.black_hole = False
        await wait_until(lambda: not tunnel.state.self_heal_held_back, 10, "released")
        assert tunnel.state.check_passed
    reconnect_lines = [r for r in caplog.records if "reconnecting" in r.getMessage()]
    assert [r.levelname for r in reconnect_lines] == ["WARNING", "WARNING"]
    assert "failed 3 times in a row (unreachable)" in reconnect_lines[0].getMessage()
    held_lines = [r for r in caplog.records if "no other reconnect" in r.getMessage()]
    assert len(held_lines) == 1


async def test_zero_failures_turns_healing_off(
    fault_server: FaultServer, checked_settings: TunnelSettings
) -> None:
    tunnel = tcp_tunnel(replace(checked_settings, self_heal=SelfHealPolicy(after_failures=0)))
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.check_passed, 10, "check passes")
        fault_server.black_hole = True
        await wait_until(lambda: fault_server.black_holed >= 6, 10, "failures")
        assert tunnel.state.failed_check == "unreachable"
        assert tunnel.state.self_heals == 0
        assert not tunnel.state.self_heal_held_back
        assert len(fault_server.connections) == 1


@pytest.fixture
def fault_entry(
    hass: HomeAssistant, fault_server: FaultServer, client_key_text: str
) -> MockConfigEntry:
    """An entry for the fault server that checks every 0.2 s (the options' floor is 60 s)."""
    data = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: fault_server.port,
        CONF_USERNAME: "tunnel",
        CONF_REMOTE_PORT: free_port(),
        CONF_PRIVATE_KEY: client_key_text,
        CONF_HOST_KEY: fault_server.host_key.export_public_key().decode(),
    }
    options = {**DEFAULT_OPTIONS, CONF_PROBE_INTERVAL: 0.2}
    entry = MockConfigEntry(domain=DOMAIN, title="tunnel@fault", data=data, options=options)
    entry.add_to_hass(hass)
    return entry


def logbook_line(hass: HomeAssistant, event: Event[dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {}
    async_describe_events(
        hass, lambda _domain, kind, describer: described.update({kind: describer})
    )
    return described[EVENT_SELF_HEALED](event)  # type: ignore[no-any-return]


async def test_home_assistant_hears_of_it_and_gets_a_repair_while_held_back(
    hass: HomeAssistant, ha_http_port: int, fault_server: FaultServer, fault_entry: MockConfigEntry
) -> None:
    """Through the integration: Home Assistant's own HTTP server answers the check."""
    events = async_capture_events(hass, EVENT_SELF_HEALED)
    quick = partial(ProbeSpec, timeout=0.3)
    with patch("custom_components.ssh_callhome.probe_view.ProbeSpec", quick):
        await load(hass, fault_entry)
    tunnel = fault_entry.runtime_data.tunnel
    await wait_until(lambda: tunnel.state.check_passed, 10, "check passes")
    fault_server.black_hole = True
    await wait_until(lambda: bool(events), 10, "self-healed event")
    assert events[0].data == {"entry_id": fault_entry.entry_id, "reason": "unreachable"}
    assert logbook_line(hass, events[0]) == {
        "name": "tunnel@fault",
        "message": "tunnel reconnected by itself: its check kept failing because nothing "
        "answered on the server's port",
    }
    registry = ir.async_get(hass)
    issue_id = f"check_keeps_failing_{fault_entry.entry_id}"
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, 10, "repair")
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": "tunnel@fault",
        "reason": "unreachable",
        "remote_port": str(fault_entry.data[CONF_REMOTE_PORT]),
        "minutes": "15",
    }
    assert len(events) == 1
    fault_server.black_hole = False
    await wait_until(lambda: registry.async_get_issue(DOMAIN, issue_id) is None, 10, "repair gone")
    assert len(events) == 1
    assert await hass.config_entries.async_unload(fault_entry.entry_id)


async def test_a_failing_public_url_counts_as_a_failed_check(
    fault_server: FaultServer, checked_settings: TunnelSettings
) -> None:
    """The direct check passes; the public URL, where nothing listens, is refused each time."""
    async with aiohttp.ClientSession() as session:
        dead_url = PublicUrlCheck(
            f"http://{LOOPBACK}:{free_port()}", lambda: session, ssl_context()
        )
        tunnel = tcp_tunnel(replace(checked_settings, public_url=dead_url))
        async with running(tunnel):
            await wait_until(lambda: tunnel.state.self_heals == 1, 10, "reconnect")
            assert tunnel.state.self_heal_reason == "public_url_refused"
    assert fault_server.black_holed == 0


async def test_the_logbook_names_a_public_url_failure(hass: HomeAssistant) -> None:
    data = {"entry_id": "gone", "reason": "public_url_name_not_found"}
    assert logbook_line(hass, Event(EVENT_SELF_HEALED, data)) == {
        "name": "SSH Call Home",
        "message": "tunnel reconnected by itself: its check kept failing because the public URL "
        "failed (name_not_found)",
    }
