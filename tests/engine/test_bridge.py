"""The bridge without Home Assistant: the channel transport's whole asyncio interface, on a real SSH
channel to a real service. Through Home Assistant's own server: tests/home_assistant/test_bridge.py.
"""

from __future__ import annotations

import asyncio
from functools import partial

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.bridge import ChannelTransport, in_process_target
from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.connection import open_connection
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import PAGE, connected, running
from harness.network import LOOPBACK, wait_until


class Collector(asyncssh.SSHTCPSession[bytes]):
    def __init__(self) -> None:
        self.data = b""
        self.done = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()


async def test_transport_interface_on_a_real_channel(
    settings: TunnelSettings, http_backend: int
) -> None:
    async with await open_connection(settings) as connection:
        collector = Collector()
        channel, _ = await connection.create_connection(lambda: collector, LOOPBACK, http_backend)
        stats = TrafficStats()
        moved: list[None] = []
        transport = ChannelTransport(
            channel, ("203.0.113.9", 4242), stats, lambda: moved.append(None)
        )
        assert transport.get_extra_info("peername") == ("203.0.113.9", 4242)
        assert transport.get_extra_info("socket") is None
        assert transport.can_write_eof()
        transport.set_write_buffer_limits(high=64 * 1024)
        assert transport.get_write_buffer_size() >= 0
        transport.writelines([b"GET / HTTP/1.0\r\n", b"Host: x\r\n", b"\r\n"])
        transport.write(b"")
        transport.write_eof()
        await asyncio.wait_for(collector.done.wait(), 10)
        assert collector.data.endswith(PAGE)
        assert stats.bytes_sent == len(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        assert len(moved) == 1  # the one write that carried bytes
        assert transport.is_closing()
        transport.write(b"ignored once closed")
        transport.write_eof()
        assert stats.bytes_sent == len(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        assert len(moved) == 1  # nothing written once closed


class Exploding(asyncio.Protocol):
    """A protocol with a bug: the first bytes it gets make it raise."""

    def data_received(self, data: bytes) -> None:
        raise ValueError("bug in the protocol")


async def test_a_failing_protocol_costs_its_channel_not_the_tunnel(
    settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    target = partial(in_process_target, lambda: Exploding, lambda address: address, lambda: None)
    tunnel = Tunnel(settings, target)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        for _ in range(2):  # the second connection proves the SSH connection survived
            reader, writer = await asyncio.open_connection(LOOPBACK, settings.remote_port)
            writer.write(b"hello")
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        assert connected(tunnel)
        assert tunnel.state.reconnects == 0
    assert "Dropping a tunnelled connection after an error: ValueError" in caplog.text
