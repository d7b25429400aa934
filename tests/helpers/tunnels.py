"""Engines for tests that talk to the engine directly, without Home Assistant."""

from __future__ import annotations

from functools import partial

from custom_components.ssh_callhome.engine_settings import TunnelSettings
from custom_components.ssh_callhome.forwarding import tcp_target
from custom_components.ssh_callhome.tunnel import Tunnel


def tcp_tunnel(settings: TunnelSettings) -> Tunnel:
    """A tunnel that hands each connection over TCP to the settings' own target."""
    return Tunnel(settings, partial(tcp_target, settings.target_host, settings.target_port))
