"""The base of every ssh_callhome entity: one device per tunnel, state pushed by the engine."""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .engine import TunnelState
from .runtime_data import SshCallhomeConfigEntry


class SshCallhomeEntity(Entity):
    """Follows the engine's state; unavailable only while the engine is not running."""

    _attr_has_entity_name = True
    # The engine pushes every change of state.
    _attr_should_poll = False

    def __init__(self, entry: SshCallhomeConfigEntry, description: EntityDescription) -> None:
        self.entity_description = description
        self.tunnel = entry.runtime_data.tunnel
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        # Where visitors reach Home Assistant through the tunnel, when the options say.
        public_url = self.tunnel.settings.public_url
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=self.tunnel.settings.account,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=public_url.url if public_url else None,
        )

    @property
    def available(self) -> bool:
        """The state is known exactly as long as the engine runs."""
        return self.tunnel.state.running

    async def async_added_to_hass(self) -> None:
        """Start following the engine."""
        await super().async_added_to_hass()
        self.async_on_remove(self.tunnel.add_listener(self._handle_state))

    @callback
    def _handle_state(self, _state: TunnelState) -> None:
        self.async_write_ha_state()
