"""The blueprint, run by Home Assistant's own automation engine."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_fire_time_changed, async_mock_service

from custom_components.ssh_callhome.const import DOMAIN

BLUEPRINT = Path(__file__).parents[2] / "blueprints/automation/ssh_callhome/tunnel_down.yaml"
SENSOR = "binary_sensor.root_example_tunnel"


async def set_up(
    hass: HomeAssistant, restart_minutes: int
) -> tuple[list[ServiceCall], list[ServiceCall]]:
    target = Path(hass.config.path("blueprints/automation/ssh_callhome"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    notes = async_mock_service(hass, "persistent_notification", "create")
    restarts = async_mock_service(hass, DOMAIN, "restart")
    hass.states.async_set(SENSOR, "on")
    automation = {
        "use_blueprint": {
            "path": "ssh_callhome/tunnel_down.yaml",
            "input": {
                "tunnel": SENSOR,
                "down_minutes": 10,
                "restart_minutes": restart_minutes,
                "tunnel_entry": "01JENTRY",
            },
        }
    }
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    return notes, restarts


async def down_for(hass: HomeAssistant, freezer: FrozenDateTimeFactory, minutes: int) -> None:
    hass.states.async_set(SENSOR, "off")
    await hass.async_block_till_done()
    await pass_minutes(hass, freezer, minutes)


async def pass_minutes(hass: HomeAssistant, freezer: FrozenDateTimeFactory, minutes: int) -> None:
    for _ in range(minutes):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()


async def test_notifies_after_the_minutes_and_restarts_later(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    notes, restarts = await set_up(hass, restart_minutes=30)
    await down_for(hass, freezer, 9)
    assert notes == []
    await pass_minutes(hass, freezer, 1)
    assert len(notes) == 1
    assert notes[0].data["title"] == "Remote access is down"
    await pass_minutes(hass, freezer, 20)
    assert [call.data for call in restarts] == [{"config_entry_id": "01JENTRY"}]


async def test_no_restart_when_zero(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    notes, restarts = await set_up(hass, restart_minutes=0)
    await down_for(hass, freezer, 60)
    assert len(notes) == 1
    assert restarts == []


async def test_back_up_in_time_notifies_nothing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    notes, restarts = await set_up(hass, restart_minutes=30)
    await down_for(hass, freezer, 5)
    hass.states.async_set(SENSOR, "on")
    await pass_minutes(hass, freezer, 60)
    assert notes == []
    assert restarts == []
