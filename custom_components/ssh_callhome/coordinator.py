"""What the entities show: readings of the engine, pushed on every change of its state.

Two coordinators per entry, as core's wled has a push connection beside an interval: the engine's
state is pushed, never polled, so the entities that show it write once per change of it; the
traffic counters change with every packet and are never pushed, so their entities also read them
on an interval. One coordinator with the interval would make the first kind write on every tick.
What only Home Assistant knows (the SSH Call Home add-on holding the remote port, found through
the Supervisor) joins the readings through the same coordinators.
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
    # The name of the SSH Call Home add-on found holding the remote port, while the forward is
    # refused for it: the Supervisor's knowledge, added here, never the engine's.
    port_held_by_addon: str | None = None

    @classmethod
    def of(cls, tunnel: Tunnel, port_held_by_addon: str | None = None) -> EngineReading:
        """Read the engine now, with what Home Assistant knows of the port's holder."""
        return cls(tunnel.state, replace(tunnel.stats), tunnel.caps_full, port_held_by_addon)


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
        self._port_held_by_addon: str | None = None
        # The engine's state before it runs: the entities start from it, unavailable.
        self.data = self._reading()

    def _reading(self) -> EngineReading:
        return EngineReading.of(self.tunnel, self._port_held_by_addon)

    @callback
    def async_engine_changed(self, _state: TunnelState) -> None:
        """The engine's listener: a new reading for every entity that follows this."""
        self.async_set_updated_data(self._reading())

    @callback
    def async_port_held_by_addon(self, addon_name: str | None) -> None:
        """A new reading when the add-on is found holding the port, or no longer does."""
        if addon_name != self._port_held_by_addon:
            self._port_held_by_addon = addon_name
            self.async_set_updated_data(self._reading())

    async def _async_update_data(self) -> EngineReading:
        """The interval's reading; reading the engine cannot fail."""
        return self._reading()


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

    @callback
    def async_port_held_by_addon(self, addon_name: str | None) -> None:
        """The add-on (by name) found holding the remote port; None once it no longer does."""
        for coordinator in (self.state, self.counters):
            coordinator.async_port_held_by_addon(addon_name)
