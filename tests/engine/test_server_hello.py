"""The first look at a server: which software it is, and which host-key algorithms to ask for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import fetch_host_key
from custom_components.ssh_callhome.engine.server_hello import (
    ServerHello,
    ServerSoftware,
    read_server_hello,
)
from harness.fault_server import FaultServer
from harness.network import LOOPBACK, SilentServer
from harness.ssh_server import LoopbackSSHServer


@pytest.mark.parametrize(
    ("version", "software"),
    [
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", ServerSoftware.OPENSSH),
        ("SSH-1.99-OpenSSH_3.9p1", ServerSoftware.OPENSSH),
        ("SSH-2.0-dropbear_2022.83", ServerSoftware.DROPBEAR),
        ("SSH-2.0-dropbear", ServerSoftware.DROPBEAR),
        ("SSH-2.0-AsyncSSH_2.23.1", ServerSoftware.OTHER),
        ("SSH-2.0-ROSSSH", ServerSoftware.OTHER),
    ],
)
def test_software_from_the_banner(version: str, software: ServerSoftware) -> None:
    assert ServerHello(version, ()).software is software


@pytest.mark.parametrize(
    ("offered", "asked"),
    [
        # Dropbear 2022.83 with only an ed25519 key offers RSA as well.
        (("ssh-ed25519", "rsa-sha2-256", "ssh-rsa"), ["ssh-ed25519", "rsa-sha2-256", "ssh-rsa"]),
        (
            ("rsa-sha2-512", "ecdsa-sha2-nistp256", "ssh-ed25519-cert-v01@openssh.com"),
            ["ecdsa-sha2-nistp256", "rsa-sha2-512"],
        ),
        # None of ours: asyncssh's own list applies.
        (("x509v3-ssh-rsa",), []),
    ],
)
def test_strongest_offered_kinds_are_asked_for_first(
    offered: tuple[str, ...], asked: list[str]
) -> None:
    assert ServerHello("SSH-2.0-x", offered).preferred_host_key_algs == asked


async def test_real_servers_are_recognised(any_server: LoopbackSSHServer) -> None:
    hello = await read_server_hello(LOOPBACK, any_server.port, 5)
    assert hello.version.lower().startswith(f"ssh-2.0-{any_server.software}_")
    assert "ssh-ed25519" in hello.host_key_algs
    identity = await fetch_host_key(LOOPBACK, any_server.port, 5)
    assert identity.software.value == any_server.software
    assert identity.host_key.get_algorithm() == "ssh-ed25519"


async def test_another_server_is_other_and_its_key_is_fetched(
    socket_enabled: None, client_key: asyncssh.SSHKey
) -> None:
    server = FaultServer(client_key)
    await server.start()
    try:
        identity = await fetch_host_key(LOOPBACK, server.port, 5)
    finally:
        await server.stop()
    assert identity.software is ServerSoftware.OTHER
    assert identity.host_key.export_public_key() == server.host_key.export_public_key()


def packet(payload: bytes) -> bytes:
    """An unencrypted SSH packet: length, padding length, payload, 4 bytes of padding."""
    return (len(payload) + 5).to_bytes(4, "big") + b"\x04" + payload + bytes(4)


BANNER = b"SSH-2.0-x\r\n"


@contextlib.asynccontextmanager
async def saying(text: bytes) -> AsyncIterator[int]:
    """A port whose server says `text`, then hangs up; yields the port."""

    async def say(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(text)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(say, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n" * 50, asyncssh.ProtocolError),
        (b"x" * 5000, asyncssh.ProtocolError),  # one overlong line
        (BANNER, asyncssh.ConnectionLost),  # closed before its KEXINIT
        (BANNER + packet(b"\x15"), asyncssh.ProtocolError),  # not a KEXINIT
        (BANNER + (1).to_bytes(4, "big") + bytes(8), asyncssh.ProtocolError),
        (BANNER + (2**31).to_bytes(4, "big") + bytes(8), asyncssh.ProtocolError),
    ],
)
async def test_a_server_that_does_not_speak_ssh_is_an_ssh_error(
    socket_enabled: None, text: bytes, error: type[Exception]
) -> None:
    async with saying(text) as port:
        with pytest.raises(error):
            await read_server_hello(LOOPBACK, port, 5)


async def test_a_short_kexinit_offers_nothing(socket_enabled: None) -> None:
    # Lines before the version line are allowed (RFC 4253, 4.2).
    async with saying(b"hello\r\n" + BANNER + packet(b"\x14" + bytes(16))) as port:
        hello = await read_server_hello(LOOPBACK, port, 5)
    assert hello.version == "SSH-2.0-x"
    assert hello.host_key_algs == ()
    assert hello.preferred_host_key_algs == []


async def test_a_silent_server_times_out(silent_server: SilentServer) -> None:
    with pytest.raises(TimeoutError):
        await read_server_hello(LOOPBACK, silent_server.port, 0.3)
