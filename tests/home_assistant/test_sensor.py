"""The sensors' registry entries and states, every one enabled, with the tunnel up.

The engine is scripted: a real tunnel's traffic and round trip differ from run to run, and a
snapshot holds exact values (test_observability follows the same sensors through a real one).
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.ssh_callhome.engine import ProbeResult, Reason, Status
from harness.integration import read_counters_now, tunnel_of
from harness.scripted_tunnel import ScriptedTunnel


@pytest.mark.freeze_time("2026-12-01 12:00:00+00:00")
@pytest.mark.parametrize("platforms", [[Platform.SENSOR]], ids=["sensor"])
@pytest.mark.usefixtures("scripted_engine", "entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    tunnel = tunnel_of(init_integration)
    assert isinstance(tunnel, ScriptedTunnel)
    tunnel.change(status=Status.DISCONNECTED, last_error=Reason.CONNECTION_LOST)
    tunnel.change(status=Status.CONNECTED, reconnects=1, reachability=ProbeResult.REACHABLE)
    stats = tunnel.stats
    stats.active_connections, stats.connections_refused, stats.visitors_refused = 2, 3, 4
    stats.bytes_received, stats.bytes_sent, stats.round_trip_ms = 3 * 2**20, 5 * 2**20, 12.5
    await read_counters_now(init_integration)
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
