"""How often each entity writes its state over a scripted life of the engine.

The engine's pushes and the counters' interval are the only reasons to write: an entity that
follows the engine's state writes once per change of it, and the counters write once per change
and once per interval tick. The figures below were measured before the entities followed
coordinators (each entity its own listener, counters polled by the platform); no entity may write
more often now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.ssh_callhome.engine import ProbeResult, Reason, Status
from harness.integration import DEVICE, REACHABLE, TUNNEL, state_of, tunnel_of
from harness.scripted_tunnel import ScriptedTunnel

# Ticks of the counters' interval (10 s) in the script, and how far each moves the clock.
TICK = timedelta(seconds=10)

# Writes per entity over the script below, measured with each entity listening to the engine
# itself and the counters polled by the sensor platform every 10 s.
WRITES_BEFORE_COORDINATORS = {
    # Once when added, then once per change of the engine's state (7).
    **dict.fromkeys(
        (
            TUNNEL,
            REACHABLE,
            f"sensor.{DEVICE}_connected_since",
            f"sensor.{DEVICE}_last_error",
            f"sensor.{DEVICE}_reconnects",
        ),
        8,
    ),
    # The same, and once per tick (6).
    **dict.fromkeys(
        (
            f"sensor.{DEVICE}_active_connections",
            f"sensor.{DEVICE}_connections_refused",
            f"sensor.{DEVICE}_refused_visitors",
        ),
        14,
    ),
    # The same, and once more when the registry stores the unit they are shown in (MiB).
    **dict.fromkeys((f"sensor.{DEVICE}_data_received", f"sensor.{DEVICE}_data_sent"), 15),
}


@pytest.fixture
def writes() -> Iterator[Counter[str]]:
    """Every state write of every entity, counted by entity id."""
    counted: Counter[str] = Counter()
    write = Entity._async_write_ha_state

    def counting_write(entity: Entity) -> None:
        counted[entity.entity_id] += 1
        write(entity)

    with patch.object(Entity, "_async_write_ha_state", counting_write):
        yield counted


async def tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory, ticks: int = 1) -> None:
    for _ in range(ticks):
        freezer.tick(TICK)
        async_fire_time_changed(hass)
        await hass.async_block_till_done()


@pytest.mark.usefixtures("scripted_engine")
async def test_no_entity_writes_more_often_than_before(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    init_integration: MockConfigEntry,
    writes: Counter[str],
) -> None:
    tunnel = tunnel_of(init_integration)
    assert isinstance(tunnel, ScriptedTunnel)

    tunnel.change(status=Status.CONNECTING)
    tunnel.change(status=Status.CONNECTED)
    tunnel.change(reachability=ProbeResult.REACHABLE)
    await hass.async_block_till_done()
    for _ in range(3):
        tunnel.stats.bytes_received += 1000
        tunnel.stats.bytes_sent += 4000
        await tick(hass, freezer)
    tunnel.change(status=Status.DISCONNECTED, last_error=Reason.CONNECTION_LOST)
    await tick(hass, freezer)
    tunnel.change(status=Status.CONNECTING)
    tunnel.change(status=Status.CONNECTED, reconnects=1)
    await tick(hass, freezer, 2)

    assert state_of(hass, TUNNEL) == STATE_ON
    assert state_of(hass, REACHABLE) != STATE_OFF
    assert state_of(hass, f"sensor.{DEVICE}_reconnects") == "1"
    assert state_of(hass, f"sensor.{DEVICE}_data_received") != "0"
    for entity_id, count in sorted(writes.items()):
        print(f"{entity_id}: {count} writes, {WRITES_BEFORE_COORDINATORS.get(entity_id)} before")
    assert writes.keys() == WRITES_BEFORE_COORDINATORS.keys()
    assert all(writes[entity_id] <= WRITES_BEFORE_COORDINATORS[entity_id] for entity_id in writes)
