"""The engine against an in-process asyncssh server, with faults injected."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from unittest.mock import patch

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Reason, Status
from harness.engine import (
    FAST_BACKOFF,
    PAGE,
    attempt_times,
    connected,
    fetch_through,
    loopback_settings,
    running,
    tcp_tunnel,
)
from harness.fault_server import FaultServer
from harness.network import SilentServer, free_port, wait_until

STOP_BOUND = 2.0


@pytest.fixture
def fault_settings(
    fault_server: FaultServer, client_key: asyncssh.SSHKey, http_backend: int
) -> TunnelSettings:
    """Engine settings for the in-process fault server."""
    host_key = fault_server.host_key.convert_to_public()
    return loopback_settings(fault_server.port, "tunnel", client_key, host_key, http_backend)


async def stop_time(task: asyncio.Task[None]) -> float:
    """Cancel the engine as unload does; returns how long it took to end."""
    start = time.monotonic()
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_BOUND + 1)
    assert task.done()
    return time.monotonic() - start


async def test_refused_forward_is_retried_on_the_same_connection(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    fault_server.refuse_forwards = 2
    tunnel = tcp_tunnel(fault_settings)
    states: list[Reason | None] = []
    tunnel.add_listener(lambda state: states.append(state.last_error))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "forward taken")
        assert Reason.FORWARD_REFUSED in states
        assert fault_server.forward_requests == 3
        assert len(fault_server.connections) == 1
        assert await fetch_through(fault_settings.remote_port) == PAGE


async def test_dropped_connection_is_restored(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    tunnel = tcp_tunnel(fault_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        fault_server.drop_all()
        await wait_until(lambda: not connected(tunnel), 5, "drop seen")
        await wait_until(lambda: tunnel.state.reconnects == 1, 10, "tunnel back")
        assert connected(tunnel)
        assert tunnel.state.last_error is Reason.CONNECTION_LOST
        assert await fetch_through(fault_settings.remote_port) == PAGE


async def test_wrong_client_key_is_rejected(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    tunnel = tcp_tunnel(replace(fault_settings, client_key=stranger))
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.last_error is Reason.AUTH, 10, "rejection")
        assert not connected(tunnel)


async def test_reconnect_request_replaces_the_connection_at_once(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    slow = replace(fault_settings, backoff=replace(FAST_BACKOFF, initial=30, maximum=30))
    tunnel = tcp_tunnel(slow)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        first = fault_server.connections[0]
        tunnel.request_reconnect()
        # No backoff delay: the new connection comes well before the 30 s step.
        await wait_until(lambda: tunnel.state.reconnects == 1, 5, "reconnected")
        assert len(fault_server.connections) == 2
        await wait_until(first.is_closed, 2, "old connection closed")
        assert tunnel.state.last_error is None


async def test_reconnect_request_cuts_a_backoff_short(fault_settings: TunnelSettings) -> None:
    closed_port = replace(
        fault_settings, port=free_port(), backoff=replace(FAST_BACKOFF, initial=30, maximum=30)
    )
    tunnel = tcp_tunnel(closed_port)
    attempts: list[Status] = []
    tunnel.add_listener(lambda state: attempts.append(state.status))
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.last_error is Reason.REFUSED, 5, "refused")
        tunnel.request_reconnect()
        await wait_until(lambda: attempts.count(Status.CONNECTING) == 2, 2, "second attempt")


async def test_stop_while_backing_off(fault_settings: TunnelSettings) -> None:
    tunnel = tcp_tunnel(replace(fault_settings, port=free_port()))
    task = asyncio.create_task(tunnel.run())
    await wait_until(lambda: tunnel.state.last_error is Reason.REFUSED, 5, "refused")
    assert await stop_time(task) < STOP_BOUND
    assert not tunnel.state.running


async def test_stop_while_connecting(
    fault_settings: TunnelSettings, silent_server: SilentServer
) -> None:
    tunnel = tcp_tunnel(replace(fault_settings, port=silent_server.port, connect_timeout=30))
    task = asyncio.create_task(tunnel.run())
    await wait_until(lambda: bool(silent_server.held), 5, "TCP connection made")
    assert tunnel.state.status is Status.CONNECTING
    assert await stop_time(task) < STOP_BOUND


async def test_stop_while_connected_closes_the_connection(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    tunnel = tcp_tunnel(fault_settings)
    task = asyncio.create_task(tunnel.run())
    await wait_until(lambda: connected(tunnel), 10, "tunnel up")
    assert await stop_time(task) < STOP_BOUND
    await wait_until(lambda: fault_server.connections[0].is_closed(), 2, "server saw the close")


async def test_connection_lost_while_the_forward_is_refused(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    fault_server.refuse_forwards = 1000
    tunnel = tcp_tunnel(fault_settings)
    async with running(tunnel):
        await wait_until(lambda: fault_server.forward_requests >= 2, 5, "forward retried")
        fault_server.drop_all()
        await wait_until(lambda: len(fault_server.connections) == 2, 5, "new connection")
        fault_server.refuse_forwards = 0
        await wait_until(lambda: connected(tunnel), 5, "forward taken")


async def test_reconnect_request_while_the_forward_is_refused(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    fault_server.refuse_forwards = 1000
    slow = replace(fault_settings, backoff=replace(FAST_BACKOFF, initial=30, maximum=30))
    tunnel = tcp_tunnel(slow)
    async with running(tunnel):
        await wait_until(lambda: fault_server.forward_requests == 1, 5, "forward refused")
        fault_server.refuse_forwards = 0
        tunnel.request_reconnect()
        await wait_until(lambda: connected(tunnel), 5, "forward taken")
        assert len(fault_server.connections) == 2


async def test_reconnect_request_while_connecting_keeps_that_attempt(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    tunnel = tcp_tunnel(fault_settings)
    async with running(tunnel):
        tunnel.request_reconnect()  # the first attempt is under way: it is the reconnect
        await wait_until(lambda: connected(tunnel), 5, "tunnel up")
        fault_server.drop_all()
        # The drop afterwards is a failure like any other, not mistaken for the request.
        await wait_until(lambda: tunnel.state.last_error is Reason.CONNECTION_LOST, 5, "drop")
        await wait_until(lambda: tunnel.state.reconnects == 1, 5, "back")


async def test_a_stable_connection_resets_the_backoff(
    fault_server: FaultServer, fault_settings: TunnelSettings
) -> None:
    policy = replace(FAST_BACKOFF, initial=0.05, maximum=10, stable_after=0.3)
    tunnel = tcp_tunnel(replace(fault_settings, backoff=policy))
    fault_server.refuse_forwards = 5  # the delay grows to 0.05 * 2**5 = 1.6 s
    attempts = attempt_times(tunnel)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "tunnel up")
        await asyncio.sleep(0.4)
        dropped = time.monotonic()
        fault_server.drop_all()
        await wait_until(lambda: attempts[-1] > dropped, 5, "next attempt")
    assert attempts[-1] - dropped < 0.5


async def test_a_failed_measurement_leaves_the_tunnel_up(
    fault_server: FaultServer, fault_settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    tunnel = tcp_tunnel(fault_settings)
    with patch(
        "custom_components.ssh_callhome.engine.tunnel.round_trip_ms",
        side_effect=RuntimeError("odd"),
    ):
        async with running(tunnel):
            await wait_until(lambda: "Measuring tunnel" in caplog.text, 5, "warning")
            assert connected(tunnel)
            assert await fetch_through(fault_settings.remote_port) == PAGE
    assert "RuntimeError: odd" in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_measurement_that_keeps_failing_is_logged_once_per_run(
    fault_server: FaultServer, fault_settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A warning when measuring starts failing, an info line when it works again; not one
    warning per pass (every 30 s) while it keeps failing."""
    failing = True
    passes = 0

    async def measure(_connection: asyncssh.SSHClientConnection) -> float:
        nonlocal passes
        passes += 1
        if failing:
            raise RuntimeError("odd")
        return 1.5

    tunnel = tcp_tunnel(fault_settings)
    with (
        patch("custom_components.ssh_callhome.engine.tunnel.round_trip_ms", measure),
        patch("custom_components.ssh_callhome.engine.tunnel.WATCH_INTERVAL", 0.02),
    ):
        async with running(tunnel):
            for _run in range(2):  # two runs of failures, each followed by a recovery
                failing = True
                enough = passes + 10
                await wait_until(lambda: passes >= enough, 5, "failing passes")  # noqa: B023
                failing = False
                await wait_until(lambda: tunnel.stats.round_trip_ms == 1.5, 5, "works again")
                tunnel.stats.round_trip_ms = None
            assert connected(tunnel)
    measuring = [r for r in caplog.records if r.getMessage().startswith("Measuring tunnel")]
    warnings = [r.getMessage() for r in measuring if r.levelname == "WARNING"]
    again = [r.getMessage() for r in measuring if r.levelname == "INFO"]
    assert len(warnings) == 2
    assert "RuntimeError: odd" in warnings[0]
    assert len(again) == 2
    assert all(message.endswith("works again") for message in again)
