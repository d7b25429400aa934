"""The public-path probe: seen from the server, does the tunnel's port reach Home Assistant.

It opens a direct-tcpip channel on the same SSH connection to the address the server listens on
for the tunnel, so the request takes the visitors' path: into the server's listener, back
through the tunnel, into Home Assistant. Only the answer this Home Assistant alone knows counts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import asyncssh

# An answer longer than this is not ours.
_MAX_RESPONSE = 16 * 1024


class ProbeResult(StrEnum):
    """What the last probe found."""

    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"  # nothing answered, or the server could not connect
    WRONG_ANSWER = "wrong_answer"  # something answered that is not this Home Assistant
    FORBIDDEN = "forbidden"  # the server does not allow such channels: no verdict possible


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """Where Home Assistant answers the probe and what it answers."""

    path: str
    answer: bytes
    interval: float = 300.0
    timeout: float = 10.0


async def probe_public_path(
    connection: asyncssh.SSHClientConnection, host: str, port: int, spec: ProbeSpec
) -> ProbeResult:
    """One probe: an HTTP request to host:port as the server sees them."""
    try:
        reader, writer = await connection.open_connection(host, port)
    except asyncssh.ChannelOpenError as error:
        if error.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            return ProbeResult.FORBIDDEN
        return ProbeResult.UNREACHABLE
    try:
        async with asyncio.timeout(spec.timeout):
            writer.write(_request(spec.path, host, port))
            response = await _read_response(reader)
    except (TimeoutError, OSError, asyncssh.Error):
        return ProbeResult.UNREACHABLE
    finally:
        writer.close()
    return ProbeResult.REACHABLE if _answers(response, spec.answer) else ProbeResult.WRONG_ANSWER


def _request(path: str, host: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()


async def _read_response(reader: asyncssh.SSHReader[bytes]) -> bytes:
    response = b""
    while len(response) <= _MAX_RESPONSE:
        chunk = await reader.read(_MAX_RESPONSE)
        if not chunk:
            break
        response += chunk
    return response


def _answers(response: bytes, answer: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line and body == answer
