"""The caps on tunnelled connections and the TCP mode's timeouts, against a real OpenSSH server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.extras import ExtraForward
from custom_components.ssh_callhome.engine.forwarding import tcp_target
from custom_components.ssh_callhome.engine.limits import (
    QUIET_BEFORE_NEXT_WARNING,
    Admission,
    ChannelGate,
    ConnectionLimits,
)
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.engine import connected, running, tcp_tunnel
from harness.network import (
    LOOPBACK,
    SilentServer,
    closed_at_once,
    connect_from,
    free_port,
    wait_until,
)

REFUSING = "Refusing tunnelled connections"
EVICTING = "All tunnelled connections are taken: closing idle or stalled ones"


def test_the_gate_holds_both_caps_and_frees_places() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=3, per_visitor=2), stats)
    first, _second = gate.admit("192.0.2.1"), gate.admit("192.0.2.1")
    with pytest.raises(asyncssh.ChannelOpenError) as refused:
        gate.admit("192.0.2.1")
    assert refused.value.code == asyncssh.OPEN_RESOURCE_SHORTAGE
    gate.admit("192.0.2.2")
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.3")
    assert (stats.active_connections, stats.connections_refused) == (3, 2)
    first.release()
    first.release()  # a second release frees nothing more
    assert stats.active_connections == 2
    gate.admit("192.0.2.3")
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.1")  # the total is full again


def test_extra_forwards_hold_half_the_total_and_leave_the_rest_to_the_main_forward() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=4, per_visitor=4), stats)

    def extra_refused(visitor: str) -> None:
        with pytest.raises(asyncssh.ChannelOpenError) as refused:
            gate.admit(visitor, extra_forward=True)
        assert refused.value.code == asyncssh.OPEN_RESOURCE_SHORTAGE

    first = gate.admit("192.0.2.1", extra_forward=True)
    gate.admit("192.0.2.2", extra_forward=True)
    extra_refused("192.0.2.3")  # two of four: their share is held
    gate.admit("192.0.2.3")  # the main forward's places stay free
    first.give_place_up()  # closing: its place is free for the extra forwards again
    third = gate.admit("192.0.2.3", extra_forward=True)
    extra_refused("192.0.2.4")
    third.release()
    gate.admit("192.0.2.4", extra_forward=True)
    assert (stats.active_connections, stats.connections_refused) == (3, 2)


def test_refusals_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    now = 1000.0
    gate = ChannelGate(ConnectionLimits(total=1, per_visitor=1), TrafficStats(), lambda: now)
    gate.admit("192.0.2.1")

    def refuse_at(moment: float) -> None:
        nonlocal now
        now = moment
        with pytest.raises(asyncssh.ChannelOpenError):
            gate.admit("192.0.2.9")

    caplog.set_level(logging.DEBUG)
    for second in range(0, 600, 10):  # a ten-minute burst, one refusal every ten seconds
        refuse_at(1000.0 + second)
    refuse_at(1590.0 + QUIET_BEFORE_NEXT_WARNING - 1)  # less than a quiet minute later
    refuse_at(1649.0 + QUIET_BEFORE_NEXT_WARNING)  # after a quiet minute: a new burst
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(REFUSING in record.getMessage() for record in warnings)
    assert gate.stats.connections_refused == 62


def admit_waiting(gate: ChannelGate, visitor: str, waiting: bool, closed: list[str]) -> Admission:
    """An admission that may be evicted while `waiting`; its eviction is noted in `closed`."""
    admission = gate.admit(visitor)
    admission.may_be_evicted(lambda: waiting, lambda: closed.append(visitor))
    return admission


def test_a_full_gate_gives_the_oldest_idle_place_of_the_biggest_holder_to_a_newcomer() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=6, per_visitor=4), stats)
    closed: list[str] = []
    busy = admit_waiting(gate, "192.0.2.1", False, closed)  # oldest, but a request under way
    idle = [admit_waiting(gate, "192.0.2.1", True, closed) for _ in range(3)]
    admit_waiting(gate, "192.0.2.2", True, closed)
    gate.admit("192.0.2.3")  # a TCP forward's: never evicted
    newcomer = gate.admit("192.0.2.9")
    assert closed == ["192.0.2.1"]
    assert stats.active_connections == 6
    assert not idle[0].evictable  # the oldest idle one went, its place freed at once
    assert idle[1].evictable
    assert not busy.evictable
    idle[0].release()  # its channel closing later frees nothing more
    assert stats.active_connections == 6
    newcomer.release()
    assert gate.evictions == 1


def test_a_full_gate_refuses_a_newcomer_no_one_holds_more_places_than() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=4, per_visitor=4), stats)
    closed: list[str] = []
    for visitor in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"):
        admit_waiting(gate, visitor, True, closed)
    # 192.0.2.1 holds 2, as many as 192.0.2.2 would: equal shares are fair.
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.2")
    gate.admit("192.0.2.9")  # would hold 1, fewer than 2
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.8")  # everybody holds 1 now
    assert closed == ["192.0.2.1"]
    assert (stats.active_connections, stats.connections_refused, gate.evictions) == (4, 2, 1)


def test_ipv6_visitors_are_weighed_by_their_48_for_newcomers_but_not_against_their_own() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=5, per_visitor=5), stats)
    closed: list[str] = []
    household = ["2001:db8:aa:bb00::1", "2001:db8:aa:bb01::1", "2001:db8:aa:bb02::1"]
    for address in household:  # three /64s of one /56, one place each
        admit_waiting(gate, address, True, closed)
    for address in ("2001:db8:cc::1", "2001:db8:cc:1::1"):  # two /64s of another /48
        admit_waiting(gate, address, True, closed)
    # A third /64 of the other /48: it would hold 3 there, as many as the household holds.
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("2001:db8:cc:2::1")
    # Another /64 of the household: its /64s hold one place each, its /48 is its own.
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("2001:db8:aa:bb03::1")
    gate.admit("192.0.2.9")  # the /48 holding the most gives its oldest idle place up
    assert closed == [household[0]]
    assert (stats.active_connections, stats.connections_refused, gate.evictions) == (5, 2, 1)


def test_a_closing_connection_gives_its_place_up_but_counts_against_its_visitor() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=3, per_visitor=2), stats)
    first, _second = gate.admit("192.0.2.1"), gate.admit("192.0.2.1")
    first.give_place_up()  # closed on our side; the SSH server has not closed it yet
    first.give_place_up()  # once only
    assert stats.active_connections == 1
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.1")  # what the server holds for it counts against its cap
    gate.admit("192.0.2.2")
    gate.admit("192.0.2.3")  # the place it gave up
    first.release()  # the SSH server closed it: its visitor may come again
    assert stats.active_connections == 3
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.1")  # the total is full: none of them waits for a request
    assert stats.connections_refused == 2


def test_closing_connections_are_bounded_by_the_total() -> None:
    stats = TrafficStats()
    gate = ChannelGate(ConnectionLimits(total=2, per_visitor=2), stats)
    closed: list[str] = []
    closing = [gate.admit("192.0.2.1") for _ in range(2)]
    for admission in closing:
        admission.give_place_up()
    kept = admit_waiting(gate, "192.0.2.2", True, closed)
    admit_waiting(gate, "192.0.2.2", True, closed)
    kept.give_place_up()  # no room among the closing ones: it keeps its place until released
    assert stats.active_connections == 2
    with pytest.raises(asyncssh.ChannelOpenError):
        gate.admit("192.0.2.9")  # an evicted one would keep its place too: refused
    closing[0].release()
    gate.admit("192.0.2.9")  # room again: the oldest idle one of 192.0.2.2 (kept) gave it up
    assert closed == ["192.0.2.2"]
    kept.release()
    assert stats.active_connections == 2  # the newcomer and the other one of 192.0.2.2


def test_evictions_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    now = 1000.0
    gate = ChannelGate(ConnectionLimits(total=50, per_visitor=50), TrafficStats(), lambda: now)
    closed: list[str] = []
    for _ in range(50):
        admit_waiting(gate, "192.0.2.1", True, closed)
    caplog.set_level(logging.DEBUG)
    for newcomer in range(20):  # one a second
        now += 1
        gate.admit(f"192.0.2.{100 + newcomer}")
    now += QUIET_BEFORE_NEXT_WARNING
    gate.admit("192.0.2.99")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(EVICTING in record.getMessage() for record in warnings)
    assert (len(closed), gate.evictions) == (21, 21)


async def test_caps_count_every_forward_of_the_tunnel(
    settings: TunnelSettings, silent_server: SilentServer, caplog: pytest.LogCaptureFixture
) -> None:
    extra_port = free_port()
    tunnel = tcp_tunnel(
        replace(
            settings,
            target_port=silent_server.port,
            extra_forwards=(ExtraForward(extra_port, LOOPBACK, silent_server.port),),
            limits=ConnectionLimits(total=4, per_visitor=2),
        )
    )
    main_port = settings.remote_port
    stats = tunnel.stats

    async def held(port: int, source: str, count: int) -> None:
        await connect_from(port, source)
        await wait_until(lambda: stats.active_connections == count, 5, f"{count} held")

    async with running(tunnel):
        await wait_until(lambda: tunnel.state.extra_forwards_up == {extra_port}, 10, "up")
        await held(main_port, "127.0.0.2", 1)
        await held(extra_port, "127.0.0.2", 2)
        assert await closed_at_once(extra_port, "127.0.0.2")  # its third, on either forward
        await held(main_port, "127.0.0.3", 3)
        await held(extra_port, "127.0.0.4", 4)
        assert await closed_at_once(main_port, "127.0.0.5")  # the fifth in all
        assert stats.connections_refused == 2
        silent_server.held[0].close()  # the target ends the first connection
        await wait_until(lambda: stats.active_connections == 3, 5, "a place freed")
        await held(main_port, "127.0.0.5", 4)
        assert connected(tunnel)
    assert [r.getMessage() for r in caplog.records].count(
        f"{REFUSING}: 127.0.0.2 holds 2 (the cap). Further refusals are counted, and logged "
        "again once a minute has passed without any"
    ) == 1
    assert sum(REFUSING in r.getMessage() for r in caplog.records) == 1


async def banner_then_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A service that speaks first, then echoes."""
    writer.write(b"220 hello\r\n")
    while data := await reader.read(4096):
        writer.write(data)
    writer.close()


@pytest.fixture
async def echo_port(socket_enabled: None) -> AsyncIterator[int]:
    server = await asyncio.start_server(banner_then_echo, LOOPBACK, 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_tcp_visitor_must_speak_first_within_the_timeout_then_may_idle(
    settings: TunnelSettings, echo_port: int
) -> None:
    limits = ConnectionLimits(first_request_timeout=0.5)
    tunnel = tcp_tunnel(replace(settings, target_port=echo_port, limits=limits))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        silent_reader, silent = await connect_from(settings.remote_port, "127.0.0.2")
        talker_reader, talker = await connect_from(settings.remote_port, "127.0.0.3")
        started = time.monotonic()
        assert await silent_reader.readline() == b"220 hello\r\n"  # the target spoke first
        assert await talker_reader.readline() == b"220 hello\r\n"
        talker.write(b"hi\n")
        assert await talker_reader.readline() == b"hi\n"
        assert await asyncio.wait_for(silent_reader.read(), 5) == b""  # closed
        assert time.monotonic() - started >= 0.4
        await asyncio.sleep(1.0)  # twice the timeout, idle, after the first bytes
        talker.write(b"still here\n")
        assert await asyncio.wait_for(talker_reader.readline(), 5) == b"still here\n"
        silent.close()
        talker.close()
        await wait_until(lambda: tunnel.stats.active_connections == 0, 5, "both closed")


async def test_a_tcp_target_that_stops_reading_is_closed_after_the_stall_timeout(
    settings: TunnelSettings, silent_server: SilentServer
) -> None:
    limits = ConnectionLimits(stall_timeout=0.5)
    tunnel = tcp_tunnel(replace(settings, target_port=silent_server.port, limits=limits))
    async with running(tunnel):
        await wait_until(lambda: connected(tunnel), 10, "up")
        _reader, writer = await connect_from(settings.remote_port, "127.0.0.2")
        await wait_until(lambda: len(silent_server.held) == 1, 5, "target connected")
        target = silent_server.held[0].transport
        assert isinstance(target, asyncio.Transport)
        target.pause_reading()  # the target reads nothing from now on

        async def upload() -> None:
            block = bytes(1024 * 1024)
            while True:
                writer.write(block)
                await writer.drain()

        sending = asyncio.create_task(upload())
        try:
            await wait_until(lambda: tunnel.stats.active_connections == 0, 30, "stall closed")
            with pytest.raises(ConnectionError):  # what the visitor sees
                await asyncio.wait_for(sending, 10)
        finally:
            sending.cancel()
            writer.close()
        assert connected(tunnel)


async def test_a_channel_asyncssh_never_opens_frees_its_place_and_target(
    silent_server: SilentServer,
) -> None:
    stats = TrafficStats()
    sessions = tcp_target(LOOPBACK, silent_server.port, ChannelGate(ConnectionLimits(), stats))
    session = await sessions("192.0.2.1", 4242)  # asyncssh opens it at once, or never
    assert stats.active_connections == 1
    await asyncio.sleep(0.05)
    assert stats.active_connections == 0
    assert session.target.is_closing()  # type: ignore[attr-defined]
