"""The engine in a test: settings for a loopback server, running it, and watching it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from functools import partial

import aiohttp
import asyncssh

from custom_components.ssh_callhome.engine.backoff import BackoffPolicy
from custom_components.ssh_callhome.engine.forwarding import tcp_target
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.engine.tunnel import Tunnel

from .network import LOOPBACK, free_port
from .ssh_server import LoopbackSSHServer

# Short delays so that recovery happens within a test's time.
FAST_BACKOFF = BackoffPolicy(initial=0.1, maximum=0.5, jitter=0.0, stable_after=5.0)
# What the HTTP service behind the tunnel serves.
PAGE = b"served behind the tunnel\n" * 1000
# What a service behind the tunnel answers the public-path check with, where a test checks.
CHECK_ANSWER = b"this home assistant"


def loopback_settings(
    server_port: int,
    username: str,
    client_key: asyncssh.SSHKey,
    host_key: asyncssh.SSHKey,
    target_port: int,
) -> TunnelSettings:
    """Engine settings for a server on loopback, with delays short enough for a test."""
    return TunnelSettings(
        host=LOOPBACK,
        port=server_port,
        username=username,
        client_key=client_key,
        host_key=host_key,
        remote_port=free_port(),
        target_host=LOOPBACK,
        target_port=target_port,
        bind_address=LOOPBACK,
        keepalive_interval=1.0,
        keepalive_count_max=2,
        connect_timeout=5.0,
        backoff=FAST_BACKOFF,
    )


def server_settings(
    server: LoopbackSSHServer, client_key: asyncssh.SSHKey, target_port: int
) -> TunnelSettings:
    """Engine settings for a real server of the tests, pinned to its host key."""
    host_key = asyncssh.import_public_key(server.host_public_key)
    return loopback_settings(server.port, server.user, client_key, host_key, target_port)


def tcp_tunnel(settings: TunnelSettings) -> Tunnel:
    """A tunnel that hands each connection over TCP to the settings' own target."""
    return Tunnel(settings, partial(tcp_target, settings.target_host, settings.target_port))


@contextlib.asynccontextmanager
async def running(tunnel: Tunnel) -> AsyncIterator[asyncio.Task[None]]:
    """Run the engine for the block, then cancel it as Home Assistant's unload does."""
    task = asyncio.create_task(tunnel.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def connected(tunnel: Tunnel) -> bool:
    return tunnel.state.status is Status.CONNECTED


def attempt_times(tunnel: Tunnel) -> list[float]:
    """When each connection attempt starts, filled in as they happen."""
    times: list[float] = []
    tunnel.add_listener(
        lambda state: times.append(time.monotonic()) if state.status is Status.CONNECTING else None
    )
    return times


async def fetch_through(remote_port: int) -> bytes:
    """GET / from the server's end of the tunnel."""
    url = f"http://{LOOPBACK}:{remote_port}/"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.read()
