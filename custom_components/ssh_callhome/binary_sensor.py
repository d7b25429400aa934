"""Connectivity sensors: the tunnel, the public path, and each extra forward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
from .state import Status, TunnelState

PARALLEL_UPDATES = 0
# An extra forward's sensor is keyed by its remote port after this.
EXTRA_FORWARD_KEY_PREFIX = "forward_"


@dataclass(frozen=True, kw_only=True)
class TunnelBinarySensorDescription(BinarySensorEntityDescription):
    """A connectivity sensor reading the engine's state; `attributes_fn` explains it."""

    device_class: BinarySensorDeviceClass = BinarySensorDeviceClass.CONNECTIVITY
    is_on_fn: Callable[[TunnelState], bool | None]
    attributes_fn: Callable[[TunnelState], dict[str, str]] | None = None


def _reachable(state: TunnelState) -> bool | None:
    """Reachable, not reachable, or unknown (no probe yet, or the server or the lists forbid it)."""
    if state.status is not Status.CONNECTED:
        return False
    if state.reachability in (None, ProbeResult.FORBIDDEN, ProbeResult.NOT_ALLOWED):
        return None
    return state.reachability is ProbeResult.REACHABLE


def _reachable_reason(state: TunnelState) -> dict[str, str]:
    """Why the Reachable sensor is what it is, as a translated state attribute."""
    if state.status is not Status.CONNECTED:
        return {"reason": "tunnel_down"}
    return {"reason": state.reachability.value if state.reachability else "not_probed_yet"}


# On while the server holds the forward for us.
TUNNEL = TunnelBinarySensorDescription(
    key="tunnel",
    translation_key="tunnel",
    is_on_fn=lambda state: state.status is Status.CONNECTED,
)
# On when the public-path probe got this Home Assistant's answer through the server.
REACHABLE = TunnelBinarySensorDescription(
    key="reachable",
    translation_key="reachable",
    is_on_fn=_reachable,
    attributes_fn=_reachable_reason,
)


def _extra_forward(remote_port: int) -> TunnelBinarySensorDescription:
    """On while the server holds one extra forward for us."""
    return TunnelBinarySensorDescription(
        key=f"{EXTRA_FORWARD_KEY_PREFIX}{remote_port}",
        translation_key="extra_forward",
        translation_placeholders={"remote_port": str(remote_port)},
        is_on_fn=lambda state: remote_port in state.extra_forwards_up,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SshCallhomeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensors of one entry: tunnel, public path, each extra forward."""
    descriptions = [
        TUNNEL,
        REACHABLE,
        *(
            _extra_forward(forward.remote_port)
            for forward in entry.runtime_data.settings.extra_forwards
        ),
    ]
    entities = [TunnelBinarySensor(entry, description) for description in descriptions]
    _remove_dropped_forwards(hass, entry, {entity.unique_id for entity in entities})
    async_add_entities(entities)


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
    """One connectivity of the tunnel, as its description reads it off the engine's state."""

    entity_description: TunnelBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """On, off, or unknown."""
        return self.entity_description.is_on_fn(self.tunnel.state)

    @property
    def extra_state_attributes(self) -> dict[str, str] | None:
        """What the description says about the value, if anything."""
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.tunnel.state) if attributes_fn else None
