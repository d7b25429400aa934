"""asyncssh's private API, as the integration reaches into it: what each reach relies on is
there, and where it is not (another asyncssh), the tunnel works without that optimisation and
says so once."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import asyncssh
import pytest
from asyncssh.packet import SSHPacket

from custom_components.ssh_callhome.engine import asyncssh_internals, private_api
from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.connection import (
    negotiated_kex,
    open_connection,
    round_trip_ms,
)
from custom_components.ssh_callhome.engine.forwarding import tcp_target
from custom_components.ssh_callhome.engine.limits import ChannelGate, ConnectionLimits
from custom_components.ssh_callhome.engine.listening import listen
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Status
from harness.engine import PAGE, fetch_through, running, tcp_tunnel
from harness.network import LOOPBACK, wait_until
from harness.openssh import OpenSSHServer

_MSG_KEXINIT = 20
Client = asyncssh.SSHClientConnection


def parameters(function: Callable[..., object]) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
VARIADIC = inspect.Parameter.VAR_POSITIONAL
KEYWORD = inspect.Parameter.KEYWORD_ONLY


def off_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == private_api.__name__ and record.levelno == logging.WARNING
    ]


async def test_what_each_reach_relies_on_is_there(
    settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # The early listener: asyncssh's table of remote listeners, and its listener class.
    listener_class = asyncssh.listener.SSHTCPClientListener
    assert [name for name, _kind in parameters(listener_class.__init__)] == [
        "self", "conn", "session_factory", "listen_host", "listen_port",
        "encoding", "errors", "window", "max_pktsize",
    ]  # fmt: skip
    # Sending: every packet goes through send_packet(pkttype, *fields, handler=...).
    assert parameters(Client.send_packet) == [
        ("self", POSITIONAL), ("pkttype", POSITIONAL), ("args", VARIADIC), ("handler", KEYWORD)
    ]  # fmt: skip
    # The round trip: the coroutine asyncssh's keepalive uses.
    assert inspect.iscoroutinefunction(Client._make_global_request)
    assert parameters(Client._make_global_request) == [
        ("self", POSITIONAL), ("request", POSITIONAL), ("args", VARIADIC)
    ]  # fmt: skip
    # The packet cap: the header is parsed by _recv_pkthdr(), which leaves the length in _pktlen.
    assert parameters(Client._recv_pkthdr) == [("self", POSITIONAL)]
    # Writing: every packet, made and encrypted, is written by _send(data) to _transport.
    assert parameters(Client._send) == [("self", POSITIONAL), ("data", POSITIONAL)]

    connection = await open_connection(settings)
    async with connection:
        assert isinstance(connection._remote_listeners, dict)
        assert isinstance(connection._pktlen, int)
        assert isinstance(connection._transport, asyncio.WriteTransport)
        # Both KEXINIT payloads are kept whole, message number first.
        for payload in (connection._client_kexinit, connection._server_kexinit):
            assert isinstance(payload, bytes)
            assert payload[0] == _MSG_KEXINIT
        # Each reach is in place on the connection, none reported off.
        assert "send_packet" in vars(connection)
        assert "_recv_pkthdr" in vars(connection)
        assert "_send" in vars(connection)
        sessions = tcp_target(
            LOOPBACK, settings.target_port, ChannelGate(ConnectionLimits(), TrafficStats())
        )
        listener = await listen(connection, LOOPBACK, settings.remote_port, sessions)
        assert await fetch_through(settings.remote_port) == PAGE
        assert await round_trip_ms(connection) is not None
        assert negotiated_kex(connection) in connection._client_kexinit.decode("ascii", "replace")
        listener.close()
    assert off_warnings(caplog) == []


# Each change makes asyncssh unlike the versions the reaches were written for, while asyncssh
# itself keeps working; each returns the name of the optimisation it turns off.
def _listener_class_renamed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delattr(asyncssh.listener, "SSHTCPClientListener")
    return asyncssh_internals.EARLY_LISTENER


def _send_packet_changed(monkeypatch: pytest.MonkeyPatch) -> str:
    send_packet = Client.send_packet

    def with_priority(
        self: Client, pkttype: int, *args: bytes, handler: Any = None, priority: int = 0
    ) -> None:
        send_packet(self, pkttype, *args, handler=handler)

    monkeypatch.setattr(Client, "send_packet", with_priority)
    return asyncssh_internals.QUIET_IGNORES


def _global_request_changed(monkeypatch: pytest.MonkeyPatch) -> str:
    make_request = Client._make_global_request

    async def with_timeout(
        self: Client, request: bytes, *args: bytes, timeout: float | None = None
    ) -> tuple[int, SSHPacket]:
        return await make_request(self, request, *args)

    monkeypatch.setattr(Client, "_make_global_request", with_timeout)
    return asyncssh_internals.ROUND_TRIP


def _header_parser_changed(monkeypatch: pytest.MonkeyPatch) -> str:
    receive_header = Client._recv_pkthdr

    def with_strictness(self: Client, strict: bool = True) -> bool:
        return receive_header(self)

    monkeypatch.setattr(Client, "_recv_pkthdr", with_strictness)
    return asyncssh_internals.PACKET_CAP


def _send_changed(monkeypatch: pytest.MonkeyPatch) -> str:
    send = Client._send

    def with_flush(self: Client, data: bytes, flush: bool = True) -> None:
        send(self, data)

    monkeypatch.setattr(Client, "_send", with_flush)
    return asyncssh_internals.BATCHED_SENDS


def _kexinit_renamed(monkeypatch: pytest.MonkeyPatch) -> str:
    # The tunnel's own connection, as it opens it.

    async def connect_then_rename(*args: Any) -> Client:
        connection = await open_connection(*args)
        # asyncssh reads it only during a key exchange, which sets it again first.
        del connection._client_kexinit
        return connection

    monkeypatch.setattr(
        "custom_components.ssh_callhome.engine.tunnel.open_connection", connect_then_rename
    )
    return asyncssh_internals.KEX_NAME


CHANGES: dict[str, Callable[[pytest.MonkeyPatch], str]] = {
    "listener class renamed": _listener_class_renamed,
    "send_packet takes another parameter": _send_packet_changed,
    "global request takes another parameter": _global_request_changed,
    "header parser takes a parameter": _header_parser_changed,
    "_send takes another parameter": _send_changed,
    "KEXINIT kept under another name": _kexinit_renamed,
}


@pytest.mark.parametrize("change", CHANGES)
async def test_with_another_asyncssh_the_tunnel_forwards_and_says_once_what_is_off(
    settings: TunnelSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    change: str,
) -> None:
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    optimisation = CHANGES[change](monkeypatch)
    tunnel = tcp_tunnel(settings)
    ups: list[int] = []
    tunnel.add_listener(lambda state: ups.append(1) if state.status is Status.CONNECTED else None)

    def up(times: int) -> Callable[[], bool]:
        return lambda: len(ups) == times

    async with running(tunnel):
        for connections in (1, 2):
            await wait_until(up(connections), 10, f"connection {connections}")
            assert await fetch_through(settings.remote_port) == PAGE
            details = tunnel.connection_details()
            await wait_until(lambda: off_warnings(caplog) != [], 5, "the warning")
            await asyncio.sleep(0.2)  # the watch's first pass measures the round trip
            tunnel.request_reconnect()
    warnings = off_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith(f"{optimisation} turned off: asyncssh ")
    assert warnings[0].exc_info is None
    if optimisation is asyncssh_internals.KEX_NAME:
        assert details["kex"] == "unknown"
    if optimisation is asyncssh_internals.ROUND_TRIP:
        assert tunnel.stats.round_trip_ms is None


async def test_without_the_quiet_ignores_the_server_gets_asyncssh_ones_again(
    settings: TunnelSettings, openssh: OpenSSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback is plain asyncssh: its empty IGNORE before each packet is back.
    _send_packet_changed(monkeypatch)
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    openssh.stop()
    openssh.log_level = "DEBUG3"
    openssh.start()
    connection = await open_connection(settings)
    async with connection:
        await connection.run("true", check=False)
    after_login = openssh.log.partition("Accepted publickey")[2]
    assert "Received SSH2_MSG_IGNORE" in after_login


def socket_writes(connection: Client) -> list[int]:
    """How many packets each write to `connection`'s socket carries, from now on."""
    transport = connection._transport
    assert transport is not None
    writes: list[int] = []
    write, writelines = transport.write, transport.writelines

    def one(data: bytes | bytearray | memoryview) -> None:
        writes.append(1)
        write(data)

    def several(list_of_data: Iterable[bytes | bytearray | memoryview[Any]]) -> None:
        packets = list(list_of_data)
        writes.append(len(packets))
        writelines(packets)

    transport.write = one  # type: ignore[method-assign]
    transport.writelines = several  # type: ignore[method-assign]
    return writes


async def test_the_packets_of_one_loop_pass_go_in_one_write_in_order(
    settings: TunnelSettings, openssh: OpenSSHServer
) -> None:
    connection = await open_connection(settings)
    async with connection:
        writes = socket_writes(connection)
        # Three sessions started in one pass: three channel-open packets, one write. The
        # server checks each packet's sequence number and MAC: a packet out of order or
        # garbled would end the connection, not answer.
        replies = await asyncio.gather(*(connection.run(f"echo {n}", check=True) for n in range(3)))
        assert [reply.stdout for reply in replies] == ["0\n", "1\n", "2\n"]
        assert writes[0] == 3
        assert len(writes) < sum(writes)
    # The disconnect, made as the connection closes, still reaches the server.
    await wait_until(lambda: "Disconnected by application" in openssh.log, 5, "disconnect")


async def test_without_the_batched_sends_each_packet_is_a_write_of_its_own(
    settings: TunnelSettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(private_api, "_REPORTED_OFF", set())
    _send_changed(monkeypatch)
    connection = await open_connection(settings)
    async with connection:
        writes = socket_writes(connection)
        await asyncio.gather(*(connection.run("true", check=True) for _ in range(3)))
        assert set(writes) == {1}
    assert [record.getMessage().split(":")[0] for record in off_warnings(caplog)] == [
        f"{asyncssh_internals.BATCHED_SENDS} turned off"
    ]


async def test_a_connection_lost_as_it_opened_is_left_as_it_is(
    settings: TunnelSettings, caplog: pytest.LogCaptureFixture
) -> None:
    connection = await asyncssh.connect(
        settings.host, settings.port, config=None,
        options=asyncssh.SSHClientConnectionOptions(
            username=settings.username, client_keys=[settings.client_key], known_hosts=None
        ),
    )  # fmt: skip
    connection.abort()  # asyncssh lets go of its transport at once
    asyncssh_internals.send_in_batches(connection)
    assert "_send" not in vars(connection)
    assert off_warnings(caplog) == []
    await connection.wait_closed()
