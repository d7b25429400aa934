"""Sensors: when the tunnel came up, why it last went down, reconnects, traffic, refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import EngineReading
from .engine import Reason, Status
from .entity import SshCallhomeEntity
from .runtime_data import SshCallhomeConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class TunnelSensorDescription(SensorEntityDescription):
    """A sensor showing one value of the engine's readings."""

    value_fn: Callable[[EngineReading], StateType | datetime]
    attributes_fn: Callable[[EngineReading], dict[str, str | bool] | None] | None = None


# Last error's state while the SSH Call Home add-on holds the remote port: more precise than the
# engine's `forward_refused`, which it stands for until the forward is taken.
PORT_HELD_BY_ADDON = "port_held_by_addon"


def _connected_since(reading: EngineReading) -> datetime | None:
    state = reading.state
    return state.since if state.status is Status.CONNECTED else None


def _last_error(reading: EngineReading) -> str | None:
    if reading.port_held_by_addon is not None:
        return PORT_HELD_BY_ADDON
    return reading.state.last_error


def _port_holder(reading: EngineReading) -> dict[str, str | bool] | None:
    """The add-on holding the port, by the name the Supervisor gives it, while it does."""
    addon_name = reading.port_held_by_addon
    return {"addon": addon_name} if addon_name is not None else None


def _data_size(key: str, value_fn: Callable[[EngineReading], int]) -> TunnelSensorDescription:
    """A traffic counter: bytes, shown in MiB, only ever growing while the engine runs."""
    return TunnelSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value_fn,
    )


def _refusals(key: str, value_fn: Callable[[EngineReading], int]) -> TunnelSensorDescription:
    """Connections refused since the engine started, for one cause."""
    return TunnelSensorDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value_fn,
    )


# What the engine pushes: these write once per change of its state.
STATE_SENSORS = (
    TunnelSensorDescription(
        key="connected_since",
        translation_key="connected_since",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_connected_since,
    ),
    TunnelSensorDescription(
        key="last_error",
        translation_key="last_error",
        device_class=SensorDeviceClass.ENUM,
        options=[*(reason.value for reason in Reason), PORT_HELD_BY_ADDON],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_last_error,
        attributes_fn=_port_holder,
    ),
    TunnelSensorDescription(
        key="reconnects",
        translation_key="reconnects",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda reading: reading.state.reconnects,
    ),
)
# Traffic counters, which change with every packet: read on an interval besides the pushes.
COUNTER_SENSORS = (
    TunnelSensorDescription(
        key="active_connections",
        translation_key="active_connections",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda reading: reading.stats.active_connections,
        # Every place taken: new visitors are refused until some leave (Connection limits).
        attributes_fn=lambda reading: {"caps_full": reading.caps_full},
    ),
    _refusals("connections_refused", lambda reading: reading.stats.connections_refused),
    _refusals("visitors_refused", lambda reading: reading.stats.visitors_refused),
    _data_size("data_received", lambda reading: reading.stats.bytes_received),
    _data_size("data_sent", lambda reading: reading.stats.bytes_sent),
    TunnelSensorDescription(
        key="round_trip_time",
        translation_key="round_trip_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda reading: reading.stats.round_trip_ms,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SshCallhomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one entry, each following the coordinator its kind of value needs."""
    coordinators = entry.runtime_data.coordinators
    async_add_entities(
        [
            *(TunnelSensor(coordinators.state, description) for description in STATE_SENSORS),
            *(TunnelSensor(coordinators.counters, description) for description in COUNTER_SENSORS),
        ]
    )


class TunnelSensor(SshCallhomeEntity, SensorEntity):
    """One value of the engine's readings."""

    entity_description: TunnelSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value in the coordinator's latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, str | bool] | None:
        """What the description adds to the value, if anything."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.coordinator.data) if attributes_fn else None
