"""The integration inside a test's Home Assistant: load an entry, read its entities."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.engine.tunnel import Tunnel

# A fixed id keeps unique ids, and so snapshots, the same from run to run.
ENTRY_ID = "01JSSHCALLHOMETESTENTRY000"
# The device of the tests' entries, named after root@127.0.0.1.
DEVICE = "root_127_0_0_1"
TUNNEL = f"binary_sensor.{DEVICE}_tunnel"
REACHABLE = f"binary_sensor.{DEVICE}_reachable_through_server"


async def load(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def tunnel_of(entry: MockConfigEntry) -> Tunnel:
    """The engine of a loaded entry."""
    tunnel: Tunnel = entry.runtime_data.tunnel
    return tunnel


def state_of(hass: HomeAssistant, entity_id: str = TUNNEL) -> str:
    """An entity's state, the Tunnel sensor's unless told; the entity must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def reachability(hass: HomeAssistant) -> tuple[str, str | None]:
    """The Reachable through server sensor: its state and the reason it gives."""
    state = hass.states.get(REACHABLE)
    assert state is not None, REACHABLE
    return state.state, state.attributes.get("reason")


async def read_counters_now(entry: MockConfigEntry) -> None:
    """Have the traffic sensors read the engine now rather than at their next interval."""
    await entry.runtime_data.coordinators.counters.async_refresh()
