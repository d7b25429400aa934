"""The connectivity sensors' registry entries and states, with a real tunnel up and checked.

No value here is a time (the snapshot leaves `last_changed` and the like out), and frozen time
would stop the event loop's clock that the real tunnel runs on: time runs as it does.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import STATE_ON, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from harness.integration import reachability
from harness.network import wait_until


@pytest.mark.parametrize("platforms", [[Platform.BINARY_SENSOR]], ids=["binary_sensor"])
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await wait_until(lambda: reachability(hass)[0] == STATE_ON, 10, "probe answered")
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
