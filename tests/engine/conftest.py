"""The engine's tests: plain asyncio, asyncssh and real servers, none of Home Assistant's fixtures.

The fixtures both layers share are in tests/conftest.py; these are the engine's alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.engine import server_settings
from harness.server_script import folder_for_accounts
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


@pytest.fixture
def accounts_folder() -> Iterator[Path]:
    """A temporary folder every account may reach, for the commands the server script's tests
    put on its PATH (pytest's tmp_path is root's alone)."""
    with folder_for_accounts() as folder:
        yield folder
