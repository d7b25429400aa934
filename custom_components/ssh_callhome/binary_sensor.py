"""The Tunnel connectivity sensor."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SshCallhomeEntity
from .probe import ProbeResult
from .runtime_data import SshCallhomeConfigEntry
from .state import Status

TUNNEL = BinarySensorEntityDescription(
    key="tunnel",
    translation_key="tunnel",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)

REACHABLE = BinarySensorEntityDescription(
    key="reachable",
    translation_key="reachable",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)

PARALLEL_UPDATES = 0
# An extra forward's sensor is keyed by its remote port after this.
EXTRA_FORWARD_KEY_PREFIX = "forward_"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SshCallhomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensors of one entry: tunnel, public path, each extra forward."""
    extras = [
        ExtraForwardBinarySensor(entry, forward.remote_port)
        for forward in entry.runtime_data.settings.extra_forwards
    ]
    _remove_dropped_forwards(hass, entry, {extra.unique_id for extra in extras})
    async_add_entities(
        [TunnelBinarySensor(entry, TUNNEL), ReachableBinarySensor(entry, REACHABLE), *extras]
    )


def _remove_dropped_forwards(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry, kept: set[str | None]
) -> None:
    """Forget the Forward N sensors of extra forwards that the options no longer list."""
    registry = er.async_get(hass)
    prefix = f"{entry.entry_id}_{EXTRA_FORWARD_KEY_PREFIX}"
    for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
        if registered.unique_id.startswith(prefix) and registered.unique_id not in kept:
            registry.async_remove(registered.entity_id)


class TunnelBinarySensor(SshCallhomeEntity, BinarySensorEntity):
    """On while the server holds the forward for us."""

    @property
    def is_on(self) -> bool:
        """Connected means the remote port is forwarded right now."""
        return self.tunnel.state.status is Status.CONNECTED


class ReachableBinarySensor(SshCallhomeEntity, BinarySensorEntity):
    """On when the public-path probe got this Home Assistant's answer through the server.

    Unknown while no probe has run on this connection, or when the server does not allow the
    probe's kind of channel (the reason attribute says which).
    """

    @property
    def is_on(self) -> bool | None:
        """Reachable, not reachable, or unknown."""
        state = self.tunnel.state
        if state.status is not Status.CONNECTED:
            return False
        if state.reachability in (None, ProbeResult.FORBIDDEN):
            return None
        return state.reachability is ProbeResult.REACHABLE

    @property
    def extra_state_attributes(self) -> dict[str, str]:
        """Why the sensor is what it is, as a translated state attribute."""
        state = self.tunnel.state
        if state.status is not Status.CONNECTED:
            return {"reason": "tunnel_down"}
        return {"reason": state.reachability.value if state.reachability else "not_probed_yet"}


class ExtraForwardBinarySensor(SshCallhomeEntity, BinarySensorEntity):
    """On while the server holds one extra forward for us."""

    def __init__(self, entry: SshCallhomeConfigEntry, remote_port: int) -> None:
        super().__init__(
            entry,
            BinarySensorEntityDescription(
                key=f"{EXTRA_FORWARD_KEY_PREFIX}{remote_port}",
                translation_key="extra_forward",
                device_class=BinarySensorDeviceClass.CONNECTIVITY,
            ),
        )
        self._remote_port = remote_port
        self._attr_translation_placeholders = {"remote_port": str(remote_port)}

    @property
    def is_on(self) -> bool:
        """Held by the server right now."""
        return self._remote_port in self.tunnel.state.extra_forwards_up
