"""Loopback ports and bounded waiting."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable

from aiohttp import web

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until true; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def port_accepts(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:port is accepted."""
    try:
        _reader, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def wait_for_port(port: int, accepting: bool, timeout: float) -> None:
    """Wait until 127.0.0.1:port accepts connections (or stops accepting them)."""
    deadline = time.monotonic() + timeout
    while await port_accepts(port) is not accepting:
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} still {'closed' if accepting else 'open'}")
        await asyncio.sleep(0.02)


class SilentServer:
    """Accepts TCP connections on a loopback port and never says a word."""

    def __init__(self) -> None:
        self.held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """Where it listens."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> SilentServer:
        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.held.append(writer)

        self._server = await asyncio.start_server(hold, LOOPBACK, 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for writer in self.held:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def serve_http(
    port: int, body: bytes, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """An HTTP service on 127.0.0.1:port answering every GET with `body`; clean up the runner.

    With `ssl_context`, HTTPS.
    """

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port, ssl_context=ssl_context).start()
    return runner


async def connect_from(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to 127.0.0.1:port from `source`, another loopback address (a visitor's own)."""
    return await asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0))


async def closed_at_once(port: int, source: str) -> bool:
    """Whether a new connection from `source` is closed without a word, as a refused one is."""
    reader, writer = await connect_from(port, source)
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
