"""Faults against real servers (OpenSSH, and Dropbear where natural), each with its bound.

Keepalive 2 s x 2 as the fault suite asks; the backoff is the fast test policy (0.1 s to 0.5 s).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Reason
from harness.engine import FAST_BACKOFF, attempt_times, connected, running, tcp_tunnel
from harness.network import LOOPBACK, SilentServer, free_port, wait_until
from harness.openssh import OpenSSHServer
from harness.processes import signal_all
from harness.ssh_server import LoopbackSSHServer

KEEPALIVE = 2.0
KEEPALIVE_COUNT = 2
DEAD_PEER_BOUND = KEEPALIVE * (KEEPALIVE_COUNT + 1) + 1


def with_fault_keepalive(settings: TunnelSettings) -> TunnelSettings:
    return replace(settings, keepalive_interval=KEEPALIVE, keepalive_count_max=KEEPALIVE_COUNT)


@pytest.fixture
def keepalive_settings(settings: TunnelSettings) -> TunnelSettings:
    """OpenSSH's settings with this suite's keepalive."""
    return with_fault_keepalive(settings)


@pytest.fixture
def any_keepalive_settings(any_settings: TunnelSettings) -> TunnelSettings:
    """Each real server's settings in turn, with this suite's keepalive."""
    return with_fault_keepalive(any_settings)


async def test_server_killed_then_back(
    any_keepalive_settings: TunnelSettings, any_server: LoopbackSSHServer
) -> None:
    tunnel = tcp_tunnel(any_keepalive_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        any_server.stop()
        detected = await wait_until(lambda: not connected(tunnel), 3, "drop within 3 s")
        any_server.start()
        recovered = await wait_until(lambda: connected(tunnel), FAST_BACKOFF.maximum + 2, "back")
    print(f"server killed: detected in {detected:.2f} s, back in {recovered:.2f} s")


async def test_frozen_link_is_detected_by_keepalive_and_recovers(
    any_keepalive_settings: TunnelSettings, any_server: LoopbackSSHServer
) -> None:
    tunnel = tcp_tunnel(any_keepalive_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        frozen = signal_all(any_server.sessions(), signal.SIGSTOP)
        detected = await wait_until(
            lambda: not connected(tunnel), DEAD_PEER_BOUND, "keepalive noticed"
        )
        assert tunnel.state.last_error is Reason.CONNECTION_LOST
        signal_all(frozen, signal.SIGCONT)
        recovered = await wait_until(lambda: connected(tunnel), 15, "back after the link returned")
    bound = f"bound {DEAD_PEER_BOUND} s"
    print(f"frozen link: detected in {detected:.2f} s ({bound}), back in {recovered:.2f} s")


async def test_stale_session_holding_the_port(
    any_keepalive_settings: TunnelSettings, any_server: LoopbackSSHServer
) -> None:
    tunnel = tcp_tunnel(any_keepalive_settings)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        # The old session keeps the port, silently.
        stale = signal_all(any_server.sessions(), signal.SIGSTOP)
        await wait_until(lambda: tunnel.state.last_error is Reason.FORWARD_REFUSED, 20, "refused")
        connections = tunnel.state.reconnects
        signal_all(stale, signal.SIGKILL)
        freed = time.monotonic()
        await wait_until(lambda: connected(tunnel), 3, "up within 3 s of the old session's end")
        assert tunnel.state.reconnects == connections + 1
    print(f"stale session: tunnel up {time.monotonic() - freed:.2f} s after it ended")


def port_is_held(port: int) -> bool:
    """Whether something listens on the loopback port; binding, unlike connecting, is not
    traffic that would keep the server's idle timer (and so its alive checks) from running."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


async def test_the_server_frees_the_port_of_a_vanished_client(
    any_server: LoopbackSSHServer, client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    # What ClientAliveInterval (OpenSSH) and -K (Dropbear) are recommended for: a client gone
    # without a goodbye must not hold its port for hours.
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(client_key.export_private_key())
    key_file.chmod(0o600)
    remote_port = free_port()
    client = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
        [
            "ssh", "-N", "-i", str(key_file), "-p", str(any_server.port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ServerAliveInterval=0",
            "-R", f"{LOOPBACK}:{remote_port}:{LOOPBACK}:9",
            f"{any_server.user}@{LOOPBACK}",
        ],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_until(lambda: port_is_held(remote_port), 10, "forward taken")
        client.send_signal(signal.SIGSTOP)
        freed = await wait_until(lambda: not port_is_held(remote_port), 15, "port freed")
    finally:
        client.kill()
        client.wait(timeout=5)
    bound = any_server.vanished_client_bound
    print(f"{any_server.software}: port of a vanished client freed in {freed:.1f} s ({bound} s)")
    assert freed < bound


async def test_key_removed_and_session_killed_keeps_to_the_backoff(
    keepalive_settings: TunnelSettings, openssh: OpenSSHServer
) -> None:
    policy = replace(FAST_BACKOFF, initial=0.2, maximum=1.0)
    tunnel = tcp_tunnel(replace(keepalive_settings, backoff=policy))
    attempts = attempt_times(tunnel)
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        openssh.set_authorized_keys([])
        signal_all(openssh.sessions(), signal.SIGKILL)
        await wait_until(lambda: tunnel.state.last_error is Reason.AUTH, 10, "rejected")
        start = len(attempts)
        await asyncio.sleep(4)
    gaps = [
        later - earlier
        for earlier, later in zip(attempts[start:-1], attempts[start + 1 :], strict=True)
    ]
    # 0.2, 0.4, 0.8, 1.0, 1.0 ... less 20 % jitter, plus the attempt itself: never a tight loop.
    assert gaps
    print(f"key removed: {len(gaps) + 1} attempts in 4 s, shortest gap {min(gaps):.2f} s")
    assert min(gaps) >= 0.2 * 0.8
    assert len(gaps) <= 4 / (0.2 * 0.8)


async def test_garbage_instead_of_ssh_is_a_reason_without_traceback(
    socket_enabled: None, keepalive_settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    async def speak_http(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(speak_http, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    tunnel = tcp_tunnel(replace(keepalive_settings, port=port))
    try:
        async with running(tunnel):
            await wait_until(lambda: tunnel.state.last_error is not None, 5, "failure")
    finally:
        server.close()
        await server.wait_closed()
    assert tunnel.state.last_error is Reason.CONNECTION_LOST
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("fault", ["dns", "refused", "timeout"])
async def test_each_connect_failure_maps_to_its_reason(
    keepalive_settings: TunnelSettings,
    silent_server: SilentServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    changes: dict[str, object] = {
        "refused": {"port": free_port()},
        "timeout": {"port": silent_server.port, "connect_timeout": 0.5},
        "dns": {"host": "vps.example"},
    }[fault]  # type: ignore[assignment]
    tunnel = tcp_tunnel(replace(keepalive_settings, **changes))  # type: ignore[arg-type]
    no_name = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    loop = asyncio.get_running_loop()
    # Name resolution would ask a DNS server, which tests must not: its failure is simulated.
    with (
        patch.object(loop, "getaddrinfo", side_effect=no_name) if fault == "dns" else nullcontext()
    ):
        async with running(tunnel):
            await wait_until(lambda: tunnel.state.last_error is not None, 5, "failure")
    assert tunnel.state.last_error == fault
    assert "Traceback" not in caplog.text
