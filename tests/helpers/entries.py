"""What a loaded config entry holds, typed."""

from __future__ import annotations

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.tunnel import Tunnel


def tunnel_of(entry: MockConfigEntry) -> Tunnel:
    """The engine of a loaded entry."""
    tunnel: Tunnel = entry.runtime_data
    return tunnel
