"""The reach into asyncio's TLS protocol (asyncio_internals.py), held to what it relies on."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from custom_components.ssh_callhome.engine import asyncio_internals
from custom_components.ssh_callhome.engine.asyncio_internals import tls_server
from harness.network import LOOPBACK
from harness.tls import self_signed, server_context


def test_asyncio_is_as_the_reach_expects() -> None:
    assert asyncio_internals._tls_transport_problem() is None


class _Application(asyncio.Protocol):
    """The protocol behind TLS: keeps its transport and what came."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.received = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.received.done():
            self.received.set_result(data)


async def test_the_tls_transport_refuses_sendfile_as_a_loop_without_it_does(
    socket_enabled: None, tmp_path: Path
) -> None:
    """loop.sendfile() raises NotImplementedError: how aiohttp learns to copy a file itself.

    asyncio's own TLS transport would have loop.sendfile() copy the file past aiohttp instead.
    Data flows both ways through it as through asyncio's own.
    """
    context = server_context(*self_signed(tmp_path))
    application = _Application()
    server = await asyncio.get_running_loop().create_server(
        lambda: tls_server(application, context), LOOPBACK, 0
    )
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=client_context)
        writer.write(b"hello")
        assert await asyncio.wait_for(application.received, 10) == b"hello"
        transport = application.transport
        assert isinstance(transport, asyncio.WriteTransport)
        assert transport.get_extra_info("ssl_object") is not None
        file = tmp_path / "file.bin"
        file.write_bytes(b"x" * 100)
        with file.open("rb") as opened, pytest.raises(NotImplementedError):
            await asyncio.get_running_loop().sendfile(transport, opened)
        transport.write(b"answer")
        assert await asyncio.wait_for(reader.readexactly(6), 10) == b"answer"
        transport.close()
        writer.close()
