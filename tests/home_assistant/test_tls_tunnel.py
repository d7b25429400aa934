"""HTTPS through the tunnel when Home Assistant serves it itself: every handshake completes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_REMOTE_PORT,
    DOMAIN,
)
from custom_components.ssh_callhome.engine import asyncio_internals, private_api
from custom_components.ssh_callhome.engine.bridge import ChannelSession
from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.connection import open_connection
from custom_components.ssh_callhome.engine.limits import ChannelGate, ConnectionLimits
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.ha_http import RemoteView, serve_file
from harness.integration import load, reachability, state_of
from harness.logs import keep_log_capture_small
from harness.network import LOOPBACK, serve_http, wait_until
from harness.tls import der_of, self_signed, server_context

REQUEST = b"GET /api/test_remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# Home Assistant's answer: the address it sees for a visitor from 127.0.0.1.
VISITOR = b"64:ff9b:1::7f00:1"
# Ample for one handshake on loopback when nothing else is going on.
HANDSHAKE_TIMEOUT = 3.0

# Handshakes at once in the concurrent test.
CONCURRENT = 200


@pytest.fixture
def tls_entry(
    hass: HomeAssistant, entry_data: dict[str, Any], https_certificate: Path
) -> MockConfigEntry:
    """A tunnel to Home Assistant's HTTPS server, not loaded yet.

    Every visitor of these tests comes from 127.0.0.1: the caps leave room for all at once, and
    for the public-path check and connections still closing, which hold places too.
    """
    room = 2 * CONCURRENT
    caps = {CONF_MAX_CONNECTIONS: room, CONF_MAX_CONNECTIONS_PER_VISITOR: room}
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, options=caps, title="tunnel")
    entry.add_to_hass(hass)
    hass.http.register_view(RemoteView())
    return entry


@pytest.fixture
async def tls_tunnel(hass: HomeAssistant, tls_entry: MockConfigEntry) -> int:
    """The tunnel running; the server's port for visitors."""
    await load(hass, tls_entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    return int(tls_entry.data[CONF_REMOTE_PORT])


def trusting(certificate: Path) -> ssl.SSLContext:
    """A client context that trusts `certificate` alone, whatever name it is for."""
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False
    return context


async def visit(port: int, context: ssl.SSLContext, handshake_timeout: float) -> str:
    """Connect, handshake, GET, close, as a browser's new connection; '' or what went wrong."""
    try:
        async with asyncio.timeout(handshake_timeout):
            reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context)
    except TimeoutError:
        return "handshake timed out"
    except OSError as error:  # ssl.SSLError is one
        return f"handshake failed: {error!r}"
    try:
        async with asyncio.timeout(10):
            writer.write(REQUEST)
            response = await reader.read()
    except (TimeoutError, OSError) as error:
        return f"request failed: {error!r}"
    finally:
        writer.close()
    return "" if response.endswith(b"\r\n\r\n" + VISITOR) else f"answer: {response!r}"


async def back_to_back(port: int, context: ssl.SSLContext, count: int) -> list[str]:
    """`count` visits, each one as soon as the previous one has closed; what went wrong."""
    return [
        failure for _ in range(count) if (failure := await visit(port, context, HANDSHAKE_TIMEOUT))
    ]


def summary(failures: list[str], count: int) -> str:
    return f"{len(failures)} of {count} failed, first: {failures[:3]}"


async def test_back_to_back_handshakes_all_complete(
    tls_tunnel: int, https_certificate: Path
) -> None:
    failures = await back_to_back(tls_tunnel, trusting(https_certificate), 100)
    assert failures == [], summary(failures, 100)


@pytest.mark.slow
async def test_a_thousand_back_to_back_handshakes_all_complete(
    tls_tunnel: int, https_certificate: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keep_log_capture_small(caplog)
    failures = await back_to_back(tls_tunnel, trusting(https_certificate), 1000)
    assert failures == [], summary(failures, 1000)


@pytest.mark.slow
async def test_two_hundred_concurrent_handshakes_all_complete(
    tls_tunnel: int, https_certificate: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keep_log_capture_small(caplog)
    context = trusting(https_certificate)
    # All at once on two shared cores: the last handshakes queue behind the others' work.
    visits = (visit(tls_tunnel, context, 30.0) for _ in range(CONCURRENT))
    failures = [failure for failure in await asyncio.gather(*visits) if failure]
    assert failures == [], summary(failures, CONCURRENT)


async def test_the_probe_reaches_home_assistant_behind_its_own_certificate(
    hass: HomeAssistant, tls_tunnel: int
) -> None:
    await wait_until(lambda: reachability(hass) == (STATE_ON, "reachable"), 10, "probe")


@pytest.fixture
async def https_impostor(
    socket_enabled: None, tls_entry: MockConfigEntry, tmp_path: Path
) -> AsyncIterator[None]:
    """An HTTPS server with a certificate of its own, holding the remote port on 127.0.0.1."""
    context = server_context(*self_signed(tmp_path / "impostor", "impostor.example"))
    runner = await serve_http(tls_entry.data[CONF_REMOTE_PORT], b"not Home Assistant", context)
    yield
    await runner.cleanup()


async def test_the_probe_finds_another_certificate_wrong(
    hass: HomeAssistant, tls_entry: MockConfigEntry, https_impostor: None
) -> None:
    # sshd binds the port on ::1 alone and reports success: visitors on 127.0.0.1 reach the
    # impostor, which speaks TLS too.
    await load(hass, tls_entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    await wait_until(lambda: reachability(hass) == (STATE_OFF, "wrong_answer"), 10, "probe")


class Recorder(asyncio.Protocol):
    """Home Assistant's part: what it learns, in order."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.request = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append(transport)

    def data_received(self, data: bytes) -> None:
        self.events.append(data)
        self.request.set_result(None)


class HelloFirst(ChannelSession):
    """asyncssh's order when the loop is busy: the visitor's first bytes come in right after
    connection_made, before the loop has run anything else."""

    def __init__(self, hello: bytes, *args: Any) -> None:
        super().__init__(*args)
        self._hello = hello

    def connection_made(self, chan: Any) -> None:
        super().connection_made(chan)
        self.data_received(self._hello, None)


async def test_a_hello_at_once_and_a_request_with_the_finished_message_are_served(
    settings: TunnelSettings, tmp_path: Path
) -> None:
    """A browser sends its ClientHello on connecting, and its first request in the same
    packet as its last handshake message: both reach the server's protocol, in order."""
    cert_path, key_path = self_signed(tmp_path)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    browser = trusting(cert_path).wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        browser.do_handshake()
    hello = outgoing.read()

    async def visitor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The visitor's end of the channel: finishes the handshake the hello began."""
        while chunk := await reader.read(65536):
            incoming.write(chunk)
            with contextlib.suppress(ssl.SSLWantReadError):
                browser.do_handshake()
                browser.write(b"GET / HTTP/1.1\r\n\r\n")
                writer.write(outgoing.read())
                return

    home_assistant = Recorder()
    server = await asyncio.start_server(visitor, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    peer = ("203.0.113.9", 4242)
    async with server, await open_connection(settings) as connection:
        tls = server_context(cert_path, key_path)
        gate = ChannelGate(ConnectionLimits(), TrafficStats())
        session = (lambda: home_assistant, peer, tls, gate, gate.admit(peer[0]))
        await connection.create_connection(lambda: HelloFirst(hello, *session), LOOPBACK, port)
        await asyncio.wait_for(home_assistant.request, 10)
        transport, request = home_assistant.events
        assert isinstance(transport, asyncio.Transport)
        assert transport.get_extra_info("ssl_object") is not None
        assert transport.get_extra_info("peername") == peer
    assert request == b"GET / HTTP/1.1\r\n\r\n"
    assert browser.getpeercert(binary_form=True) == der_of(cert_path)


@pytest.mark.parametrize("size", [1024, 3 * 1024 * 1024 + 1234])
async def test_a_file_over_https_arrives_whole_headers_first(
    hass: HomeAssistant, tls_tunnel: int, https_certificate: Path, tmp_path: Path, size: int
) -> None:
    content = os.urandom(size)
    (tmp_path / "file.bin").write_bytes(content)
    serve_file(hass, "/api/test_file", tmp_path / "file.bin")
    connector = aiohttp.TCPConnector(ssl=trusting(https_certificate))
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):  # the second on the same connection
            async with session.get(f"https://{LOOPBACK}:{tls_tunnel}/api/test_file") as reply:
                assert reply.status == 200
                assert await reply.read() == content


def first_record(port: int, context: ssl.SSLContext, request: bytes) -> bytes:
    """What one TLS read gets first after `request`: the contents of one record, no more."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw) as browser,
    ):
        browser.sendall(request)
        return browser.recv(1024 * 1024)


async def test_a_small_file_over_https_is_one_record_headers_and_body(
    hass: HomeAssistant, tls_tunnel: int, https_certificate: Path, tmp_path: Path
) -> None:
    """aiohttp copies files itself behind the tunnel's TLS, the tunnel's way.

    asyncio's own sendfile would send the headers first, in a record of their own, and the body
    after an executor round trip; the tunnel's way sends the headers with the file's first
    chunk, read with the opening (aiohttp_internals.with_tunnel_file_responses).
    """
    content = os.urandom(1024)
    (tmp_path / "small.bin").write_bytes(content)
    serve_file(hass, "/api/test_small_file", tmp_path / "small.bin")
    request = b"GET /api/test_small_file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    record = await asyncio.to_thread(first_record, tls_tunnel, trusting(https_certificate), request)
    assert record.startswith(b"HTTP/1.1 200 OK\r\n")
    assert record.endswith(b"\r\n\r\n" + content)


async def test_with_another_asyncio_files_over_https_go_as_asyncio_sends_them(
    hass: HomeAssistant,
    tls_tunnel: int,
    https_certificate: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where asyncio's TLS protocol is not as the reach expects, asyncio's own transport serves.

    asyncio's sendfile then copies files past aiohttp, so their responses are left as aiohttp
    makes them: the headers at once, in a record of their own (held back for a first chunk, they
    would go after the file). One warning says so.
    """
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    monkeypatch.setattr(asyncio_internals, "_tls_transport_problem", lambda: "changed")
    content = os.urandom(1024)
    (tmp_path / "small.bin").write_bytes(content)
    serve_file(hass, "/api/test_small_file", tmp_path / "small.bin")
    request = b"GET /api/test_small_file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    context = trusting(https_certificate)
    for _ in range(2):
        record = await asyncio.to_thread(first_record, tls_tunnel, context, request)
        assert record.startswith(b"HTTP/1.1 200 OK\r\n")
        assert record.endswith(b"\r\n\r\n")  # the headers alone
    url = f"https://{LOOPBACK}:{tls_tunnel}/api/test_small_file"
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as reply:
        assert await reply.read() == content
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == private_api.__name__ and record.levelno == logging.WARNING
    ]
    assert warnings == [
        f"{asyncio_internals.TLS_FILES} turned off: asyncio's sslproto is not as expected (changed)"
    ]
