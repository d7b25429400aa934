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

from .engine import ProbeResult, PublicUrlResult, Status, TunnelSettings, TunnelState
from .entity import SshCallhomeEntity
from .runtime_data import SshCallhomeConfigEntry

PARALLEL_UPDATES = 0
# An extra forward's sensor is keyed by its remote port after this.
EXTRA_FORWARD_KEY_PREFIX = "forward_"


@dataclass(frozen=True, kw_only=True)
class TunnelBinarySensorDescription(BinarySensorEntityDescription):
    """A connectivity sensor reading the engine's state; `attributes_fn` explains it."""

    device_class: BinarySensorDeviceClass = BinarySensorDeviceClass.CONNECTIVITY
    is_on_fn: Callable[[TunnelState], bool | None]
    attributes_fn: Callable[[TunnelSettings, TunnelState], dict[str, str]] | None = None


# What the direct check found when it could not tell whether the way in works.
NO_VERDICT = (None, ProbeResult.FORBIDDEN, ProbeResult.NOT_ALLOWED, ProbeResult.CAPS_FULL)


def is_reachable(state: TunnelState) -> bool | None:
    """Off when a check found Home Assistant unreachable, on when one found it, else unknown.

    Both checks must pass: the direct one (the server's port) and, with a public URL, the
    outside-in one. The direct check forbidden by the server, not sent because the visitor
    lists would refuse it, or failed while the caps were full, gives no verdict either way.
    """
    if state.status is not Status.CONNECTED:
        return False
    verdicts = set()
    if state.reachability not in NO_VERDICT:
        verdicts.add(state.reachability is ProbeResult.REACHABLE)
    if state.public_url_result is not None:
        verdicts.add(state.public_url_result is PublicUrlResult.REACHABLE)
    return all(verdicts) if verdicts else None


def _reachable_reasons(settings: TunnelSettings, state: TunnelState) -> dict[str, str]:
    """Why the Reachable sensor is what it is, as translated state attributes."""
    reasons = {"reason": _reason(state, state.reachability)}
    if settings.public_url is not None and settings.probe is not None:
        reasons["public_url_reason"] = _reason(state, state.public_url_result)
    return reasons


def _reason(state: TunnelState, result: ProbeResult | PublicUrlResult | None) -> str:
    if state.status is not Status.CONNECTED:
        return "tunnel_down"
    return result.value if result else "not_probed_yet"


# On while the server holds the forward for us.
TUNNEL = TunnelBinarySensorDescription(
    key="tunnel",
    translation_key="tunnel",
    is_on_fn=lambda state: state.status is Status.CONNECTED,
)
# On when the public-path checks got this Home Assistant's answer through the server.
REACHABLE = TunnelBinarySensorDescription(
    key="reachable",
    translation_key="reachable",
    is_on_fn=is_reachable,
    attributes_fn=_reachable_reasons,
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
            for forward in entry.runtime_data.tunnel.settings.extra_forwards
        ),
    ]
    coordinator = entry.runtime_data.coordinators.state
    entities = [TunnelBinarySensor(coordinator, description) for description in descriptions]
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
        return self.entity_description.is_on_fn(self.coordinator.data.state)

    @property
    def extra_state_attributes(self) -> dict[str, str] | None:
        """What the description says about the value, if anything."""
        attributes_fn = self.entity_description.attributes_fn
        if attributes_fn is None:
            return None
        return attributes_fn(self.coordinator.tunnel.settings, self.coordinator.data.state)
