"""The engine's public input: what a caller hands to `Tunnel` (and to the flow's one-off check).

Plain data and types, no Home Assistant: the integration builds them from a config entry
(builder.py), the tests directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncssh

from .backoff import BackoffPolicy
from .extras import ExtraForward
from .healing import SelfHealPolicy
from .limits import ConnectionLimits
from .probe import ProbeSpec
from .public_url import PublicUrlCheck


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    """How to reach the server and keep the tunnel up; `Tunnel` gets its target beside these."""

    host: str
    port: int
    username: str
    client_key: asyncssh.SSHKey
    host_key: asyncssh.SSHKey
    remote_port: int
    # The TCP address connections go to (in process: Home Assistant's own), for the flow's check
    # and diagnostics; what `Tunnel` hands connections to is its target.
    target_host: str
    target_port: int
    # "" asks the server for all interfaces, as `ssh -R port:...` does.
    bind_address: str = ""
    keepalive_interval: float = 30.0
    keepalive_count_max: int = 3
    connect_timeout: float = 15.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # None: no public-path probe.
    probe: ProbeSpec | None = None
    # The URL visitors use, checked from outside along with the probe; None: not set.
    public_url: PublicUrlCheck | None = None
    extra_forwards: tuple[ExtraForward, ...] = ()
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    self_heal: SelfHealPolicy = field(default_factory=SelfHealPolicy)

    @property
    def probe_host(self) -> str:
        """The server's own address for the tunnel's port: its wildcard includes loopback."""
        return self.bind_address or "127.0.0.1"

    @property
    def account(self) -> str:
        """user@host, the name of the tunnel's device."""
        return f"{self.username}@{self.host}"

    @property
    def server_name(self) -> str:
        """How the tunnel is named in logs: user@host:port."""
        return f"{self.account}:{self.port}"
