"""What the tunnel carries: byte-exact both ways, half-close, a target that speaks first, flow
control with a slow reader, and a refusing target that costs one channel, not the tunnel."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import connected, running, tcp_tunnel
from harness.network import LOOPBACK, free_port, wait_until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def target(socket_enabled: None) -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start TCP services behind the tunnel; each returns its port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, LOOPBACK, 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def echo_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads everything until the client's EOF, then answers with its digest and closes."""
    data = await reader.read()
    writer.write(hashlib.sha256(data).hexdigest().encode())
    await writer.drain()
    writer.close()


async def banner_first(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 hello from the target\r\n")
    await writer.drain()
    writer.close()


BIG = 32 * 1024 * 1024


async def big_download(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends BIG pseudo-random bytes as fast as the pipe takes them."""
    block = os.urandom(1024 * 1024)
    for _ in range(BIG // len(block)):
        writer.write(block)
        await writer.drain()
    writer.close()


async def through(settings: TunnelSettings, target_port: int) -> Tunnel:
    return tcp_tunnel(replace(settings, target_port=target_port))


async def open_remote(tunnel: Tunnel) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, tunnel.settings.remote_port)


async def test_half_close_both_ways_and_exact_bytes(
    settings: TunnelSettings, target: Callable[[Handler], Awaitable[int]]
) -> None:
    tunnel = await through(settings, await target(echo_after_eof))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        reader, writer = await open_remote(tunnel)
        payload = os.urandom(3 * 1024 * 1024 + 17)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.decode() == hashlib.sha256(payload).hexdigest()
        await wait_until(lambda: tunnel.stats.active_connections == 0, 5, "channel closed")
        assert tunnel.stats.bytes_received == len(payload)
        assert tunnel.stats.bytes_sent == len(answer)


async def test_a_target_that_speaks_first_is_heard(
    settings: TunnelSettings, target: Callable[[Handler], Awaitable[int]]
) -> None:
    tunnel = await through(settings, await target(banner_first))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        reader, writer = await open_remote(tunnel)
        assert await asyncio.wait_for(reader.read(), 10) == b"220 hello from the target\r\n"
        writer.close()


async def test_a_slow_reader_gets_everything(
    settings: TunnelSettings, target: Callable[[Handler], Awaitable[int]]
) -> None:
    tunnel = await through(settings, await target(big_download))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        reader, writer = await open_remote(tunnel)
        received = 0
        first = await reader.readexactly(1024 * 1024)
        received += len(first)
        # Stop reading for a while: the target must be paused, not buffered without bound.
        await asyncio.sleep(1.0)
        paused_sent = tunnel.stats.bytes_sent
        assert paused_sent < BIG // 2
        while chunk := await asyncio.wait_for(reader.read(1024 * 1024), 10):
            received += len(chunk)
        writer.close()
        assert received == BIG


async def test_a_refusing_target_costs_the_channel_not_the_tunnel(
    settings: TunnelSettings, target: Callable[[Handler], Awaitable[int]]
) -> None:
    closed_port = free_port()
    tunnel = await through(settings, closed_port)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        reader, writer = await open_remote(tunnel)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the server closes it at once
        writer.close()
        assert connected(tunnel)
        assert tunnel.stats.active_connections == 0


async def test_a_slow_target_gets_a_big_upload_intact(
    settings: TunnelSettings, target: Callable[[Handler], Awaitable[int]]
) -> None:
    paused = asyncio.Event()

    async def slow_then_digest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readexactly(1024 * 1024)
        await paused.wait()  # the test looks at the counters while the target reads nothing
        rest = await reader.read()
        writer.write(hashlib.sha256(first + rest).hexdigest().encode())
        await writer.drain()
        writer.close()

    tunnel = await through(settings, await target(slow_then_digest))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        reader, writer = await open_remote(tunnel)
        payload = os.urandom(BIG)

        async def upload() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sending = asyncio.create_task(upload())
        await asyncio.sleep(1.0)
        assert tunnel.stats.bytes_received < BIG // 2  # held back, not buffered in memory
        paused.set()
        await sending
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        assert answer.decode() == hashlib.sha256(payload).hexdigest()
