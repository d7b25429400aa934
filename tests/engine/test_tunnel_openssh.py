"""The engine against real servers: OpenSSH, and Dropbear where the behaviour is the server's."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Reason, Status, TunnelState
from harness.engine import PAGE, connected, fetch_through, running, tcp_tunnel
from harness.network import wait_until
from harness.openssh import OpenSSHServer
from harness.ssh_server import LoopbackSSHServer


async def test_request_through_the_tunnel_returns_the_page(any_settings: TunnelSettings) -> None:
    tunnel = tcp_tunnel(any_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        assert await fetch_through(any_settings.remote_port) == PAGE
        assert tunnel.state.last_error is None
        assert tunnel.state.reconnects == 0


async def test_keepalives_are_answered(any_settings: TunnelSettings) -> None:
    # Keepalive every second, dead after two unanswered: five seconds up means answers came.
    tunnel = tcp_tunnel(any_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        await asyncio.sleep(5 * any_settings.keepalive_interval)
        assert connected(tunnel)
        assert tunnel.state.reconnects == 0


async def test_follows_the_server_going_away_and_coming_back(
    any_settings: TunnelSettings, any_server: LoopbackSSHServer
) -> None:
    tunnel = tcp_tunnel(any_settings)
    seen: list[TunnelState] = []
    tunnel.add_listener(seen.append)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        any_server.stop()
        await wait_until(lambda: not connected(tunnel), 5, "drop noticed")
        assert tunnel.state.last_error in {Reason.CONNECTION_LOST, Reason.REFUSED}
        any_server.start()
        await wait_until(lambda: connected(tunnel), 10, "tunnel back")
        assert await fetch_through(any_settings.remote_port) == PAGE
        assert tunnel.state.reconnects == 1
    assert [state.status for state in seen].count(Status.CONNECTED) == 2
    assert not tunnel.state.running


async def test_stop_frees_the_remote_port(any_settings: TunnelSettings) -> None:
    tunnel = tcp_tunnel(any_settings)
    async with running(tunnel) as task:
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
    assert task.cancelled()
    assert tunnel.state.status is Status.DISCONNECTED
    # The server gives the port back once our session is gone: a second engine takes it.
    second = tcp_tunnel(any_settings)
    async with running(second):
        await wait_until(lambda: connected(second), 10, "second tunnel up")


async def test_refused_forward_is_reported(
    any_settings: TunnelSettings, any_server: LoopbackSSHServer
) -> None:
    any_server.stop()
    any_server.forbid_remote_forwarding()
    any_server.start()
    tunnel = tcp_tunnel(any_settings)
    async with running(tunnel):
        await wait_until(
            lambda: tunnel.state.last_error is Reason.FORWARD_REFUSED, 10, "refusal reported"
        )
        assert not connected(tunnel)


@pytest.mark.parametrize("wrong", ["key", "host_key"])
async def test_rejections_are_reported(
    any_settings: TunnelSettings, any_server: LoopbackSSHServer, wrong: str
) -> None:
    if wrong == "key":
        any_server.set_authorized_keys([])
        expected = Reason.AUTH
    else:
        any_server.stop()
        any_server.replace_host_key()
        any_server.start()
        expected = Reason.HOST_KEY
    tunnel = tcp_tunnel(any_settings)
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.last_error is expected, 10, f"{expected} reported")


async def test_an_outage_is_logged_once_with_its_length(
    settings: TunnelSettings, openssh: OpenSSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    tunnel = tcp_tunnel(settings)
    attempts: list[Status] = []
    tunnel.add_listener(lambda state: attempts.append(state.status))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        caplog.clear()
        openssh.stop()
        await wait_until(lambda: attempts.count(Status.CONNECTING) >= 5, 10, "several retries")
        await asyncio.sleep(1)
        openssh.start()
        await wait_until(lambda: connected(tunnel), 10, "tunnel back")
    ours = [r for r in caplog.records if r.name.startswith("custom_components.ssh_callhome")]
    warnings = [r.getMessage() for r in ours if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "is down (connection_lost)" in warnings[0]
    assert "Traceback" not in caplog.text
    back = [r.getMessage() for r in ours if "up again after" in r.getMessage()]
    assert len(back) == 1
    assert not back[0].endswith("0:00:00")


async def test_one_short_session_turns_the_servers_nagle_off(
    settings: TunnelSettings, openssh: OpenSSHServer
) -> None:
    # sshd sets TCP_NODELAY when a session starts and never for a forward-only connection;
    # the benchmark (scripts/bench.py) shows what that is worth: no ~40 ms delayed-ACK stalls.
    tunnel = tcp_tunnel(settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
    assert openssh.log.count("Starting session: command") == 1


async def test_the_server_receives_no_empty_ignore_packets(
    settings: TunnelSettings, openssh: OpenSSHServer
) -> None:
    # asyncssh's CBC countermeasure before every packet: our ciphers do not need it, and it
    # costs a download through the tunnel about 15 % (see ignore_packets.py).
    openssh.stop()
    openssh.log_level = "DEBUG3"
    openssh.start()
    tunnel = tcp_tunnel(settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        for _ in range(3):
            assert await fetch_through(settings.remote_port) == PAGE
    # During login, before the connection is ours to adjust, asyncssh's IGNOREs still go out.
    after_login = openssh.log.partition("Accepted publickey")[2]
    assert "rcvd eof" in after_login  # the visitors' connections are in this part of the log
    assert "Received SSH2_MSG_IGNORE" not in after_login
