"""The typed config entry of this integration: its runtime data is the running tunnel.

A module of its own, so that platforms, repairs, diagnostics and services can import the type
without importing the package root (which imports them).
"""

from homeassistant.config_entries import ConfigEntry

from .engine import Tunnel

type SshCallhomeConfigEntry = ConfigEntry[Tunnel]
