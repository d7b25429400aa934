"""A first look at an SSH server: its version banner and the host-key algorithms it offers.

Read before the host key is fetched, for two reasons. The banner tells which server it is, and so
which authorized_keys options and settings it understands. And some servers offer host-key
algorithms they cannot use: Dropbear 2022.83 offers `rsa-sha2-256` with no RSA key and aborts a
client that picks it, as asyncssh does by default. Asking for the strongest kinds first avoids that.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import asyncssh

# Enough for any real banner and KEXINIT; a server sending more is not one we talk to.
_MAX_PRE_BANNER_LINES = 20
# Longer than any version line (RFC 4253 allows 255 characters).
_MAX_LINE = 1024
_MAX_PACKET = 35000
_MSG_KEXINIT = 20
_COOKIE = 16
_CLIENT_VERSION = b"SSH-2.0-ssh_callhome\r\n"

# Plain host-key algorithms, strongest kinds first: ed25519, ECDSA, then RSA.
HOST_KEY_PREFERENCE = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)


class ServerSoftware(StrEnum):
    """Which server implementation answered; decides the authorized_keys line shown."""

    OPENSSH = "openssh"
    DROPBEAR = "dropbear"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ServerHello:
    """What the server says before any key exchange."""

    version: str
    host_key_algs: tuple[str, ...]

    @property
    def software(self) -> ServerSoftware:
        """From the software part of `SSH-2.0-softwareversion comments`."""
        software = self.version.split("-", 2)[-1].lower()
        if software.startswith("openssh"):
            return ServerSoftware.OPENSSH
        if software.startswith("dropbear"):
            return ServerSoftware.DROPBEAR
        return ServerSoftware.OTHER

    @property
    def preferred_host_key_algs(self) -> list[str]:
        """The algorithms to ask for: ours in order of preference, among those offered.

        Empty when the server offers none of them: asyncssh's own choice then applies.
        """
        return [name for name in HOST_KEY_PREFERENCE if name in self.host_key_algs]


async def read_server_hello(host: str, port: int, connect_timeout: float) -> ServerHello:
    """Connect, exchange versions, read the server's KEXINIT, and hang up."""
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=_MAX_LINE)
        try:
            version = await _read_version(reader)
            writer.write(_CLIENT_VERSION)
            kexinit = await _read_packet(reader)
        except asyncio.IncompleteReadError:
            raise asyncssh.ConnectionLost("The server closed before its key exchange") from None
        except asyncio.LimitOverrunError:
            raise asyncssh.ProtocolError("The server sent an overlong line") from None
        finally:
            writer.close()
    if kexinit[:1] != bytes([_MSG_KEXINIT]):
        raise asyncssh.ProtocolError("The server's first packet is not a KEXINIT")
    return ServerHello(version, tuple(name_lists(kexinit)[1]))


async def _read_version(reader: asyncio.StreamReader) -> str:
    """The `SSH-` line; servers may send other lines before it (RFC 4253, 4.2)."""
    for _ in range(_MAX_PRE_BANNER_LINES):
        line = await reader.readuntil(b"\n")
        if line.startswith(b"SSH-"):
            return line.rstrip(b"\r\n").decode("ascii", "replace")
    raise asyncssh.ProtocolError("The server sent no SSH version line")


async def _read_packet(reader: asyncio.StreamReader) -> bytes:
    """One unencrypted binary packet's payload (RFC 4253, 6)."""
    length = int.from_bytes(await reader.readexactly(4), "big")
    if length > _MAX_PACKET:
        raise asyncssh.ProtocolError(f"Packet length {length} over the limit of {_MAX_PACKET}")
    if length < 2:  # the padding-length byte and at least one more
        raise asyncssh.ProtocolError(f"Packet length {length} too short")
    packet = await reader.readexactly(length)
    padding = packet[0]
    return packet[1 : length - padding]


def name_lists(kexinit: bytes) -> list[list[str]]:
    """The name-lists of a KEXINIT payload: message byte, 16-byte cookie, then ten lists."""
    lists: list[list[str]] = []
    offset = 1 + _COOKIE
    for _ in range(10):
        if len(kexinit) < offset + 4:
            break
        length = int.from_bytes(kexinit[offset : offset + 4], "big")
        names = kexinit[offset + 4 : offset + 4 + length].decode("ascii", "replace")
        lists.append(names.split(",") if names else [])
        offset += 4 + length
    return lists + [[] for _ in range(10 - len(lists))]
