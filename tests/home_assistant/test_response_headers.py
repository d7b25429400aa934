"""Response headers read from the public URL and the heartbeat's endpoint are bounded.

aiohttp 3.13.3's client keeps every header line a server sends. Local HTTP servers that answer
with exactly so many bytes of headers, and a hostile one in its own process that streams header
lines forever, against the session both checks go out through (Home Assistant's shared pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import asyncssh
import pytest
from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from custom_components.ssh_callhome.engine.aiohttp_client_internals import (
    MAX_RESPONSE_BYTES,
    MAX_RESPONSE_HEADER_BYTES,
    ResponseHeadersTooLarge,
)
from custom_components.ssh_callhome.engine.probe import ProbeSpec
from custom_components.ssh_callhome.engine.public_url import (
    PublicUrlCheck,
    PublicUrlResult,
    check_public_url,
)
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.heartbeat import Heartbeat
from custom_components.ssh_callhome.http_client import async_bounded_session
from harness.engine import CHECK_ANSWER, running, server_settings, tcp_tunnel
from harness.header_flood import header_flood
from harness.network import LOOPBACK, wait_until
from harness.openssh import OpenSSHServer

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
BODY = b"the answer"
# The check's timeout in these tests: long enough for a loaded machine, short for the suite.
TIMEOUT = 3.0
# How late the timeout may fire on a machine shared with other test runs.
TIMEOUT_MARGIN = 1.0
# Peak memory the check may add while a server floods it (the bound parsed is about 2 MiB).
MEMORY_MARGIN = 48 * 1024**2


def head_of_size(size: int, end: bytes = b"\r\n\r\n", status: bytes = STATUS_LINE) -> bytes:
    """A response head of exactly `size` bytes, its blank line included.

    `end` is two line ends: the lines after the status line end as it says.
    """
    line_end = end[: len(end) // 2]
    head = status + b"Content-Length: 10" + line_end
    while size - len(head) - len(end) > 100:
        head += b"X-Filler: " + b"a" * 80 + line_end
    head += b"X-Last: " + b"b" * (size - len(head) - len(end) - len(b"X-Last: ")) + end
    assert len(head) == size
    return head


class RawServer:
    """An HTTP server on loopback that answers every request with the bytes it is given."""

    def __init__(self) -> None:
        self.answer = b""
        self.connections = 0  # accepted so far
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.sockets[0].getsockname()[1]}/"

    async def start(self) -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            # Until the client hangs up, as it does when the bound is reached.
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(self.answer)
                    await writer.drain()

        self._server = await asyncio.start_server(answer, LOOPBACK, 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def raw_server(socket_enabled: None) -> AsyncIterator[RawServer]:
    server = RawServer()
    await server.start()
    yield server
    await server.stop()


async def fetch(hass: HomeAssistant, url: str) -> bytes:
    async with async_bounded_session(hass).get(url) as response:
        return await response.read()


@pytest.mark.parametrize("end", [b"\r\n\r\n", b"\n\n"])
async def test_headers_up_to_the_bound_are_read_and_beyond_it_refused(
    hass: HomeAssistant, raw_server: RawServer, end: bytes
) -> None:
    """What the bound relies on: the session's request class sees each response's bytes."""
    raw_server.answer = head_of_size(MAX_RESPONSE_HEADER_BYTES, end) + BODY
    assert await fetch(hass, raw_server.url) == BODY
    assert await fetch(hass, raw_server.url) == BODY  # the connection kept, unbounded no more
    raw_server.answer = head_of_size(MAX_RESPONSE_HEADER_BYTES + 1, end) + BODY
    with pytest.raises(ResponseHeadersTooLarge):
        await fetch(hass, raw_server.url)


async def test_interim_responses_count_towards_the_bound(
    hass: HomeAssistant, raw_server: RawServer
) -> None:
    early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
    half = MAX_RESPONSE_HEADER_BYTES // 2
    raw_server.answer = early_hints + head_of_size(half) + BODY
    assert await fetch(hass, raw_server.url) == BODY
    raw_server.answer = early_hints + head_of_size(half, status=b"HTTP/1.1 103 Hints\r\n")
    raw_server.answer += head_of_size(half) + BODY
    with pytest.raises(ResponseHeadersTooLarge):
        await fetch(hass, raw_server.url)


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_response_up_to_the_whole_bound_is_read_and_beyond_it_refused(
    hass: HomeAssistant, raw_server: RawServer, chunked: bool
) -> None:
    """Headers, body and trailer count together: a body longer than the header bound is read."""
    head = STATUS_LINE + b"Transfer-Encoding: chunked\r\n\r\n" if chunked else STATUS_LINE

    def answer_of_size(size: int) -> tuple[bytes, bytes]:
        """An answer of `size` bytes in all, and its body (the body's length has as many
        digits as `size`: the sizes here are far from a power of the base)."""
        if chunked:  # one chunk, the last chunk, a short trailer and its end
            frame = (b"\r\n", b"\r\n0\r\nX-T: 1\r\n\r\n")
            digits = len(f"{size:x}")
            body = b"x" * (size - len(head) - digits - len(frame[0]) - len(frame[1]))
            return head + f"{len(body):x}".encode() + frame[0] + body + frame[1], body
        length = b"Content-Length: \r\n\r\n"
        body = b"x" * (size - len(head) - len(length) - len(str(size)))
        return head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body, body

    raw_server.answer, body = answer_of_size(MAX_RESPONSE_BYTES)
    assert len(raw_server.answer) == MAX_RESPONSE_BYTES
    assert len(body) > MAX_RESPONSE_HEADER_BYTES
    assert await fetch(hass, raw_server.url) == body
    assert await fetch(hass, raw_server.url) == body  # the connection kept, bounded anew
    raw_server.answer, _body = answer_of_size(MAX_RESPONSE_BYTES + 1)
    with pytest.raises(ResponseHeadersTooLarge):
        await fetch(hass, raw_server.url)


async def test_a_connection_back_in_the_shared_pool_carries_no_bound(
    hass: HomeAssistant, raw_server: RawServer
) -> None:
    """Home Assistant's other sessions share the connector: the bound ends with the body."""
    raw_server.answer = head_of_size(1024) + BODY
    assert await fetch(hass, raw_server.url) == BODY
    body = b"x" * (4 * MAX_RESPONSE_BYTES)
    raw_server.answer = STATUS_LINE + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    async with async_get_clientsession(hass).get(raw_server.url) as response:
        assert await response.read() == body
    assert raw_server.connections == 1  # the same connection, taken from the pool


def resident_bytes() -> int:
    """This process's resident memory now."""
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * 4096


async def peak_memory_growth(work: Awaitable[object]) -> tuple[object, int]:
    """What `work` returns, and the most resident memory grew while it ran (sampled)."""
    start = peak = resident_bytes()
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, resident_bytes())
        await asyncio.wait({task}, timeout=0.01)
    return task.result(), peak - start


def public_url(hass: HomeAssistant, port: int) -> PublicUrlCheck:
    return PublicUrlCheck(
        url=f"http://{LOOPBACK}:{port}",
        session=partial(async_bounded_session, hass),
        tls=ssl.create_default_context(),
    )


PROBE = ProbeSpec(path="/probe", answer=CHECK_ANSWER, timeout=TIMEOUT)


async def timed(check: Callable[[], Awaitable[PublicUrlResult]]) -> tuple[object, int, float]:
    started = time.monotonic()
    result, growth = await peak_memory_growth(check())
    return result, growth, time.monotonic() - started


async def test_a_header_flood_is_a_wrong_answer_within_the_bound(
    socket_enabled: None, hass: HomeAssistant
) -> None:
    with header_flood() as port:
        check = partial(check_public_url, public_url(hass, port), PROBE)
        result, growth, seconds = await timed(check)
    print(f"header flood: {result} after {seconds:.2f} s, memory +{growth / 1024**2:.1f} MiB")
    assert result is PublicUrlResult.WRONG_ANSWER
    assert growth < MEMORY_MARGIN
    assert seconds < TIMEOUT


async def test_a_header_trickle_times_out_on_time(
    socket_enabled: None, hass: HomeAssistant
) -> None:
    """Slower than the bound fills: the timeout ends it, and at its time."""
    with header_flood(pause=0.005) as port:
        check = partial(check_public_url, public_url(hass, port), PROBE)
        result, growth, seconds = await timed(check)
    print(f"header trickle: {result} after {seconds:.2f} s, memory +{growth / 1024**2:.1f} MiB")
    assert result is PublicUrlResult.TIMEOUT
    assert TIMEOUT <= seconds < TIMEOUT + TIMEOUT_MARGIN


async def test_a_heartbeat_endpoint_flooding_headers_fails_the_beat(
    hass: HomeAssistant,
    openssh: OpenSSHServer,
    client_key: asyncssh.SSHKey,
    answer_port: int,
    answering: web.AppRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = ProbeSpec(path="/probe", answer=CHECK_ANSWER, interval=0.2, timeout=0.5)
    settings: TunnelSettings = replace(
        server_settings(openssh, client_key, answer_port), probe=probe
    )
    tunnel = tcp_tunnel(settings)
    with header_flood() as port:
        heartbeat = Heartbeat(hass, tunnel, f"http://{LOOPBACK}:{port}/", timedelta(seconds=5))
        tunnel.add_listener(heartbeat)
        async with running(tunnel):
            failed = f"Heartbeat to {LOOPBACK} failed: response headers beyond"
            await wait_until(lambda: failed in caplog.text, 10, "heartbeat failed")
        heartbeat.async_stop()
    lines = [r for r in caplog.records if r.name.endswith(".heartbeat")]
    assert [(r.levelno, r.exc_info) for r in lines] == [(logging.WARNING, None)]
