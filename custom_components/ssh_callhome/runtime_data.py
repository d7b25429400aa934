"""The typed config entry of this integration, and what its runtime data holds while it runs.

A module of its own, so that platforms, repairs, diagnostics and services can import the type
without importing the package root (which imports them).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .coordinator import EngineCoordinators
from .engine import Tunnel
from .heartbeat import Heartbeat


@dataclass(frozen=True, slots=True)
class SshCallhomeData:
    """One running entry: its tunnel, its heartbeat if it has one, what its entities follow."""

    tunnel: Tunnel
    heartbeat: Heartbeat | None
    coordinators: EngineCoordinators


type SshCallhomeConfigEntry = ConfigEntry[SshCallhomeData]
