"""The Tunnel connectivity sensor."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import SshCallhomeConfigEntry
from .entity import SshCallhomeEntity
from .state import Status

TUNNEL = BinarySensorEntityDescription(
    key="tunnel",
    translation_key="tunnel",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SshCallhomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the Tunnel sensor of one entry."""
    async_add_entities([TunnelBinarySensor(entry, TUNNEL)])


class TunnelBinarySensor(SshCallhomeEntity, BinarySensorEntity):
    """On while the server holds the forward for us."""

    @property
    def is_on(self) -> bool:
        """Connected means the remote port is forwarded right now."""
        return self.tunnel.state.status is Status.CONNECTED
