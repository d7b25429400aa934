"""What the entities show: readings of the engine, pushed on every change of its state.

Two coordinators per entry, as core's wled has a push connection beside an interval: the engine's
state is pushed, never polled, so the entities that show it write once per change of it; the
traffic counters change with every packet and are never pushed, so their entities also read them
on an interval. One coordinator with the interval would make the first kind write on every tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import DOMAIN
from .engine import TrafficStats, Tunnel, TunnelState

_LOGGER = logging.getLogger(__name__)
# How often the traffic counters are read besides the engine's pushes: often enough for a
# dashboard to follow a download, seldom enough not to fill the recorder.
COUNTERS_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class EngineReading:
    """The engine's state and counters as one moment saw them."""

    state: TunnelState
    # A copy: the engine's own counters move on after the reading.
    stats: TrafficStats
    caps_full: bool

    @classmethod
    def of(cls, tunnel: Tunnel) -> EngineReading:
        """Read the engine now."""
        return cls(tunnel.state, replace(tunnel.stats), tunnel.caps_full)


class EngineCoordinator(DataUpdateCoordinator[EngineReading]):
    """Readings of one entry's engine: on each change of its state, and on an interval if given."""

    config_entry: ConfigEntry[Any]

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        tunnel: Tunnel,
        update_interval: timedelta | None,
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=update_interval,
        )
        self.tunnel = tunnel
        # The engine's state before it runs: the entities start from it, unavailable.
        self.data = EngineReading.of(tunnel)

    @callback
    def async_engine_changed(self, _state: TunnelState) -> None:
        """The engine's listener: a new reading for every entity that follows this."""
        self.async_set_updated_data(EngineReading.of(self.tunnel))

    async def _async_update_data(self) -> EngineReading:
        """The interval's reading; reading the engine cannot fail."""
        return EngineReading.of(self.tunnel)


@dataclass(frozen=True, slots=True)
class EngineCoordinators:
    """The two coordinators of one entry."""

    # Follows the engine's pushes only.
    state: EngineCoordinator
    # Follows them too, and reads the counters every COUNTERS_INTERVAL.
    counters: EngineCoordinator

    @classmethod
    def for_tunnel(
        cls, hass: HomeAssistant, entry: ConfigEntry[Any], tunnel: Tunnel
    ) -> EngineCoordinators:
        """The coordinators of an entry's engine; they hear of it once `async_follow` ran."""
        return cls(
            EngineCoordinator(hass, entry, tunnel, update_interval=None),
            EngineCoordinator(hass, entry, tunnel, update_interval=COUNTERS_INTERVAL),
        )

    @callback
    def async_follow(self, entry: ConfigEntry[Any]) -> None:
        """Hear of every change of the engine's state until the entry unloads."""
        for coordinator in (self.state, self.counters):
            entry.async_on_unload(coordinator.tunnel.add_listener(coordinator.async_engine_changed))
