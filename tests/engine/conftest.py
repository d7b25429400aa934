"""The engine's tests: plain asyncio, asyncssh and real servers, none of Home Assistant's fixtures.

The fixtures both layers share are in tests/conftest.py; these are the engine's alone.
"""

from __future__ import annotations

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.engine import server_settings
from harness.ssh_server import LoopbackSSHServer


@pytest.fixture(params=["openssh", "dropbear"])
def any_server(request: pytest.FixtureRequest) -> LoopbackSSHServer:
    """Each real server the tunnel is tested against, in turn."""
    server: LoopbackSSHServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def any_settings(
    any_server: LoopbackSSHServer, client_key: asyncssh.SSHKey, http_backend: int
) -> TunnelSettings:
    """Engine settings for each real server in turn, forwarding to the HTTP service."""
    return server_settings(any_server, client_key, http_backend)
