"""The public-path probe: seen from the server, does the tunnel's port reach Home Assistant.

It opens a direct-tcpip channel on the same SSH connection to the address the server listens on
for the tunnel, so the request takes the visitors' path: into the server's listener, back
through the tunnel, into Home Assistant. Only the answer this Home Assistant alone knows counts,
and when Home Assistant serves HTTPS itself, only from behind the certificate it serves.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Protocol

import asyncssh

# An answer longer than this is not ours.
_MAX_RESPONSE = 16 * 1024
# A TLS 1.2 handshake takes two round trips, TLS 1.3 one.
_HANDSHAKE_ROUND_TRIPS = 2


class ProbeResult(StrEnum):
    """What the last probe found."""

    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"  # nothing answered, or the server could not connect
    WRONG_ANSWER = "wrong_answer"  # something answered that is not this Home Assistant
    FORBIDDEN = "forbidden"  # the server does not allow such channels: no verdict possible
    # The networks allowed and refused keep out the server's own loopback, where the probe
    # comes from: it would be refused like any visitor from there, so it is not sent.
    NOT_ALLOWED = "not_allowed"
    # Every place of the caps was taken and the check failed meanwhile: it may have been
    # refused like a visitor, so it says nothing about the path (the engine decides: tunnel.py).
    CAPS_FULL = "caps_full"


# Where the probe arrives from: the server connects to its own loopback (probe_host) from there.
PROBE_ORIGINATOR = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """Where Home Assistant answers the probe and what it answers."""

    path: str
    answer: bytes
    interval: float = 300.0
    timeout: float = 10.0
    # The certificate Home Assistant serves (DER) when it speaks HTTPS; None for plain HTTP.
    certificate: bytes | None = None


async def probe_public_path(
    connection: asyncssh.SSHClientConnection, host: str, port: int, spec: ProbeSpec
) -> ProbeResult:
    """One probe: an HTTP(S) request to host:port as the server sees them."""
    try:
        reader, writer = await connection.open_connection(host, port)
    except asyncssh.ChannelOpenError as error:
        if error.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            return ProbeResult.FORBIDDEN
        return ProbeResult.UNREACHABLE
    stream: _Stream = _PlainStream(reader, writer)
    if spec.certificate is not None:
        stream = _TlsStream(stream)
    try:
        async with asyncio.timeout(spec.timeout):
            if await stream.start() != spec.certificate:  # both None for plain HTTP
                return ProbeResult.WRONG_ANSWER
            stream.send(_request(spec.path, host, port))
            response = await _read_response(stream)
    except ssl.SSLError:  # something answered that does not speak TLS, or not with us
        return ProbeResult.WRONG_ANSWER
    except (TimeoutError, OSError, asyncssh.Error):
        return ProbeResult.UNREACHABLE
    finally:
        writer.close()
    return ProbeResult.REACHABLE if _answers(response, spec.answer) else ProbeResult.WRONG_ANSWER


def served_certificate(context: ssl.SSLContext) -> bytes:
    """The certificate (DER) a client meets where `context` serves TLS.

    An SSLContext does not tell its certificate; a handshake with it in memory shows exactly
    what visitors are shown, also when the file on disk has changed since it was loaded.
    """
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = _client_context().wrap_bio(to_client, to_server)
    server = context.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(_HANDSHAKE_ROUND_TRIPS + 1):
        if _handshake_step(client):
            break
        _handshake_step(server)
    return _peer_certificate(client)


def _client_context() -> ssl.SSLContext:
    """TLS without a CA's word: the certificate itself is compared (self-signed is common)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _handshake_step(side: ssl.SSLObject) -> bool:
    """Go on with the handshake as far as what has arrived allows; whether it is done."""
    try:
        side.do_handshake()
    except ssl.SSLWantReadError:
        return False
    return True


def _peer_certificate(tls: ssl.SSLObject) -> bytes:
    certificate = tls.getpeercert(binary_form=True)
    if certificate is None:  # a server always shows one, unless anonymous ciphers are on
        raise ssl.SSLError("the server showed no certificate")
    return certificate


class _Stream(Protocol):
    """The probe's conversation on its channel."""

    async def start(self) -> bytes | None:
        """Set up; the certificate the other end showed, if any."""

    def send(self, data: bytes) -> None:
        """Send `data` on."""

    async def receive(self) -> bytes:
        """What has arrived, or b'' at the end."""


class _PlainStream:
    """HTTP on the channel as it is."""

    def __init__(
        self, reader: asyncssh.SSHReader[bytes], writer: asyncssh.SSHWriter[bytes]
    ) -> None:
        self._reader = reader
        self._writer = writer

    async def start(self) -> bytes | None:
        return None

    def send(self, data: bytes) -> None:
        self._writer.write(data)

    async def receive(self) -> bytes:
        return await self._reader.read(_MAX_RESPONSE)


class _TlsStream:
    """HTTPS on the channel: TLS through memory buffers, since the channel is no socket."""

    def __init__(self, channel: _Stream) -> None:
        self._channel = channel
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = _client_context().wrap_bio(self._incoming, self._outgoing)

    async def start(self) -> bytes | None:
        await self._complete(self._tls.do_handshake)
        return _peer_certificate(self._tls)

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    async def receive(self) -> bytes:
        try:
            return await self._complete(partial(self._tls.read, _MAX_RESPONSE))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # closed, with or without notice
            return b""

    async def _complete[T](self, step: Callable[[], T]) -> T:
        """Run `step`, feeding it what arrives until it needs no more."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                self._flush()
                await self._fill()
            else:
                self._flush()
                return result

    def _flush(self) -> None:
        if pending := self._outgoing.read():
            self._channel.send(pending)

    async def _fill(self) -> None:
        if data := await self._channel.receive():
            self._incoming.write(data)
        else:
            self._incoming.write_eof()


def _request(path: str, host: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()


async def _read_response(stream: _Stream) -> bytes:
    response = b""
    while len(response) <= _MAX_RESPONSE:
        chunk = await stream.receive()
        if not chunk:
            break
        response += chunk
    return response


def _answers(response: bytes, answer: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line and body == answer
