"""The base of every ssh_callhome entity: one device per tunnel, readings from a coordinator."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import EngineCoordinator


class SshCallhomeEntity(CoordinatorEntity[EngineCoordinator]):
    """Follows the engine's readings; unavailable only while the engine is not running."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: EngineCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        entry_id = coordinator.config_entry.entry_id
        settings = coordinator.tunnel.settings
        self._attr_unique_id = f"{entry_id}_{description.key}"
        # Where visitors reach Home Assistant through the tunnel, when the options say.
        public_url = settings.public_url
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry_id)},
            name=settings.account,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=public_url.url if public_url else None,
        )

    @property
    def available(self) -> bool:
        """The state is known exactly as long as the engine runs."""
        return super().available and self.coordinator.data.state.running
