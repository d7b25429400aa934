"""What the server chooses to say reaches the log on one line, bounded: no forged log lines."""

from __future__ import annotations

import logging

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.server_text import SERVER_TEXT_LIMIT, printable
from custom_components.ssh_callhome.engine.state import Reason
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import connected, loopback_settings, running, tcp_tunnel
from harness.fault_server import FaultServer
from harness.network import wait_until
from harness.rude_server import assert_no_forged_line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Connection reset", "Connection reset"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("line\u2028sep\u2029para", "line\\u2028sep\\u2029para"),
        ("bidi\u202eevil\u2066x\u2069", "bidi\\u202eevil\\u2066x\\u2069"),
        ("already \\n escaped", "already \\\\n escaped"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("bücher ünïcode", "bücher ünïcode"),
    ],
)
def test_printable_escapes_what_is_not_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_caps_long_text_with_an_ellipsis() -> None:
    shown = printable("x" * 10_000)
    assert len(shown) == SERVER_TEXT_LIMIT
    assert shown.endswith("…")
    assert printable("x" * SERVER_TEXT_LIMIT) == "x" * SERVER_TEXT_LIMIT
    # The cap holds after escaping too: escapes are longer than the characters they stand for.
    assert len(printable("\n" * SERVER_TEXT_LIMIT)) == SERVER_TEXT_LIMIT


def tunnel_down_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "is down" in record.getMessage()]


async def until_refused(tunnel: Tunnel) -> None:
    await wait_until(
        lambda: tunnel.state.last_error is Reason.CONNECTION_LOST, 10, "sent away by the server"
    )


async def test_a_forged_log_line_in_a_disconnect_reason_stays_in_its_line(
    rude_server: FaultServer, client_key: asyncssh.SSHKey, caplog: pytest.LogCaptureFixture
) -> None:
    host_key = rude_server.host_key.convert_to_public()
    tunnel = tcp_tunnel(loopback_settings(rude_server.port, "tunnel", client_key, host_key, 1))
    async with running(tunnel):
        await until_refused(tunnel)
    (down,) = tunnel_down_records(caplog)
    assert down.levelno == logging.WARNING
    assert "\\n2026-01-01 00:00:00.000 ERROR" in down.getMessage()
    assert_no_forged_line([down])


async def test_an_overlong_disconnect_reason_is_capped(
    rude_server: FaultServer, client_key: asyncssh.SSHKey, caplog: pytest.LogCaptureFixture
) -> None:
    rude_server.disconnect_reason = "because " * 4000
    host_key = rude_server.host_key.convert_to_public()
    tunnel = tcp_tunnel(loopback_settings(rude_server.port, "tunnel", client_key, host_key, 1))
    async with running(tunnel):
        await until_refused(tunnel)
    (down,) = tunnel_down_records(caplog)
    reason = down.getMessage().partition("): ")[2]
    assert reason.startswith("DisconnectError: because because")
    assert len(reason) == SERVER_TEXT_LIMIT
    assert reason.endswith("…")


async def test_the_version_banner_in_diagnostics_is_escaped(
    socket_enabled: None, client_key: asyncssh.SSHKey, http_backend: int
) -> None:
    server = FaultServer(client_key)
    server.version = b"OpenSSH_9.9\x1b[2J\x1b]0;owned\x07" + b"x" * 200
    await server.start()
    host_key = server.host_key.convert_to_public()
    tunnel = tcp_tunnel(
        loopback_settings(server.port, "tunnel", client_key, host_key, http_backend)
    )
    try:
        async with running(tunnel):
            await wait_until(lambda: connected(tunnel), 10, "tunnel up")
            shown = tunnel.connection_details()["server_version"]
    finally:
        await server.stop()
    assert shown.startswith("SSH-2.0-OpenSSH_9.9\\x1b[2J\\x1b]0;owned\\x07xxx")
    assert len(shown) == SERVER_TEXT_LIMIT
    assert shown.endswith("…")
