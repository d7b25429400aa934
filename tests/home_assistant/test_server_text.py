"""What the server chooses to say reaches the log on one line, bounded: no forged log lines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncssh
import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, CONF_REMOTE_PORT, DOMAIN
from custom_components.ssh_callhome.engine.server_text import SERVER_TEXT_LIMIT, printable
from custom_components.ssh_callhome.engine.state import Reason
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import connected, loopback_settings, running, tcp_tunnel
from harness.fault_server import FaultServer
from harness.network import LOOPBACK, free_port, wait_until

FORGED = "2026-01-01 00:00:00.000 ERROR (MainThread) [homeassistant.core] forged"
# A line break, the forged line, then ANSI escapes that would clear the screen and recolour.
INJECTION = f"bye\n{FORGED}\r\n\x1b[2J\x1b[31mred\u2028{FORGED}\u202e"


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


@pytest.fixture
async def rude_server(
    socket_enabled: None, client_key: asyncssh.SSHKey
) -> AsyncIterator[FaultServer]:
    """A server that sends every client away with a reason of its own choosing."""
    server = FaultServer(client_key)
    server.disconnect_reason = INJECTION
    await server.start()
    yield server
    await server.stop()


def assert_no_forged_line(records: list[logging.LogRecord]) -> None:
    """No record breaks a line where the server put one, so no forged line stands alone."""
    assert records
    for record in records:
        text = record.getMessage()
        assert "\x1b" not in text
        for line in text.splitlines()[1:]:  # splitlines knows U+2028 and friends too
            assert not line.startswith(FORGED[:10]), text


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


async def test_no_log_line_of_home_assistant_carries_the_forgery(
    hass: HomeAssistant,
    ha_http_port: int,
    rude_server: FaultServer,
    client_key_text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the config flow, asyncssh's own lines (which quote the reason) included."""
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "paste_key"}
    )
    user_input = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: rude_server.port,
        CONF_USERNAME: "tunnel",
        CONF_REMOTE_PORT: free_port(),
        CONF_PRIVATE_KEY: client_key_text,
    }
    confirm = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert confirm["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(confirm["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    quoting = [record for record in caplog.records if "forged" in record.getMessage()]
    assert any(record.name.startswith("asyncssh") for record in quoting)
    assert_no_forged_line(caplog.records)


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
