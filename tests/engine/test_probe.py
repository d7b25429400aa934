"""The probe on its own, against a real OpenSSH server.

The view that answers it is tested in tests/home_assistant/test_probe_view.py.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import open_connection
from custom_components.ssh_callhome.engine.probe import (
    ProbeResult,
    ProbeSpec,
    probe_public_path,
    served_certificate,
)
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.network import LOOPBACK, SilentServer, free_port, serve_http
from harness.tls import der_of, self_signed, server_context

SPEC = ProbeSpec(path="/probe", answer=b"ours", timeout=0.5)


@pytest.fixture
async def connection(settings: TunnelSettings) -> AsyncIterator[asyncssh.SSHClientConnection]:
    async with await open_connection(settings) as conn:
        yield conn


async def test_our_answer_is_reachable_another_is_not(
    connection: asyncssh.SSHClientConnection,
) -> None:
    for body, expected in ((b"ours", ProbeResult.REACHABLE), (b"theirs", ProbeResult.WRONG_ANSWER)):
        port = free_port()
        runner = await serve_http(port, body)
        try:
            assert await probe_public_path(connection, LOOPBACK, port, SPEC) is expected
        finally:
            await runner.cleanup()


async def test_nothing_listening_is_unreachable(connection: asyncssh.SSHClientConnection) -> None:
    assert await probe_public_path(connection, LOOPBACK, free_port(), SPEC) is (
        ProbeResult.UNREACHABLE
    )


async def test_silence_is_unreachable(
    connection: asyncssh.SSHClientConnection, silent_server: SilentServer
) -> None:
    result = await probe_public_path(connection, LOOPBACK, silent_server.port, SPEC)
    assert result is ProbeResult.UNREACHABLE


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Two self-signed certificates and their keys: ours, and another server's."""
    return {name: self_signed(tmp_path / name) for name in ("ours", "theirs")}


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_served_certificate_is_the_one_a_client_meets(
    certificates: dict[str, tuple[Path, Path]], tls_version: ssl.TLSVersion
) -> None:
    context = server_context(*certificates["ours"])
    context.maximum_version = tls_version
    assert served_certificate(context) == der_of(certificates["ours"][0])


async def test_over_https_only_the_served_certificate_with_our_answer_counts(
    connection: asyncssh.SSHClientConnection, certificates: dict[str, tuple[Path, Path]]
) -> None:
    ours, theirs = (der_of(cert) for cert, _key in certificates.values())
    port = free_port()
    runner = await serve_http(port, b"ours", server_context(*certificates["ours"]))
    try:
        for certificate, expected in (
            (ours, ProbeResult.REACHABLE),
            (theirs, ProbeResult.WRONG_ANSWER),  # the right answer, but not from behind ours
            (None, ProbeResult.WRONG_ANSWER),  # plain HTTP meets a TLS server
        ):
            spec = replace(SPEC, certificate=certificate, timeout=5.0)
            assert await probe_public_path(connection, LOOPBACK, port, spec) is expected
    finally:
        await runner.cleanup()


async def test_over_https_a_plain_http_answer_is_wrong(
    connection: asyncssh.SSHClientConnection, certificates: dict[str, tuple[Path, Path]]
) -> None:
    port = free_port()
    runner = await serve_http(port, b"ours")
    try:
        spec = replace(SPEC, certificate=der_of(certificates["ours"][0]), timeout=5.0)
        assert await probe_public_path(connection, LOOPBACK, port, spec) is (
            ProbeResult.WRONG_ANSWER
        )
    finally:
        await runner.cleanup()


async def test_over_https_silence_is_unreachable(
    connection: asyncssh.SSHClientConnection,
    silent_server: SilentServer,
    certificates: dict[str, tuple[Path, Path]],
) -> None:
    spec = replace(SPEC, certificate=der_of(certificates["ours"][0]))
    result = await probe_public_path(connection, LOOPBACK, silent_server.port, spec)
    assert result is ProbeResult.UNREACHABLE
