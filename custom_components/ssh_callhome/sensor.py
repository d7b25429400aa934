"""Sensors: when the tunnel came up, why it last went down, reconnects, traffic, refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

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

from .engine import Reason, Status, Tunnel
from .entity import SshCallhomeEntity
from .runtime_data import SshCallhomeConfigEntry

PARALLEL_UPDATES = 0
# Traffic counters change with every packet: they are read on this schedule, not pushed.
SCAN_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True, kw_only=True)
class TunnelSensorDescription(SensorEntityDescription):
    """A sensor reading one value off the engine."""

    value_fn: Callable[[Tunnel], StateType | datetime]
    polled: bool = False
    attributes_fn: Callable[[Tunnel], dict[str, bool]] | None = None


def _connected_since(tunnel: Tunnel) -> datetime | None:
    state = tunnel.state
    return state.since if state.status is Status.CONNECTED else None


def _data_size(key: str, value_fn: Callable[[Tunnel], int]) -> TunnelSensorDescription:
    """A traffic counter: bytes, shown in MiB, only ever growing while the engine runs."""
    return TunnelSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value_fn,
        polled=True,
    )


def _refusals(key: str, value_fn: Callable[[Tunnel], int]) -> TunnelSensorDescription:
    """Connections refused since the engine started, for one cause."""
    return TunnelSensorDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value_fn,
        polled=True,
    )


SENSORS = (
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
        options=[reason.value for reason in Reason],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda tunnel: tunnel.state.last_error,
    ),
    TunnelSensorDescription(
        key="reconnects",
        translation_key="reconnects",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda tunnel: tunnel.state.reconnects,
    ),
    TunnelSensorDescription(
        key="active_connections",
        translation_key="active_connections",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda tunnel: tunnel.stats.active_connections,
        polled=True,
        # Every place taken: new visitors are refused until some leave (Connection limits).
        attributes_fn=lambda tunnel: {"caps_full": tunnel.caps_full},
    ),
    _refusals("connections_refused", lambda tunnel: tunnel.stats.connections_refused),
    _refusals("visitors_refused", lambda tunnel: tunnel.stats.visitors_refused),
    _data_size("data_received", lambda tunnel: tunnel.stats.bytes_received),
    _data_size("data_sent", lambda tunnel: tunnel.stats.bytes_sent),
    TunnelSensorDescription(
        key="round_trip_time",
        translation_key="round_trip_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda tunnel: tunnel.stats.round_trip_ms,
        polled=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SshCallhomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one entry."""
    async_add_entities(TunnelSensor(entry, description) for description in SENSORS)


class TunnelSensor(SshCallhomeEntity, SensorEntity):
    """One value of the engine."""

    entity_description: TunnelSensorDescription

    def __init__(self, entry: SshCallhomeConfigEntry, description: TunnelSensorDescription) -> None:
        super().__init__(entry, description)
        # Traffic counters are polled; the rest follows the engine's pushes.
        self._attr_should_poll = description.polled

    @property
    def native_value(self) -> StateType | datetime:
        """The value, read off the engine now."""
        return self.entity_description.value_fn(self.tunnel)

    @property
    def extra_state_attributes(self) -> dict[str, bool] | None:
        """What the description adds to the value, if anything."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.tunnel) if attributes_fn else None
