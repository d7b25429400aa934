"""Networks allowed and refused: the lists, the gate, and a real OpenSSH server in TCP mode.

With GatewayPorts no (the test server's), sshd reports the loopback address a visitor's
connection came from: each visitor here connects from a loopback address of its own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_network

import asyncssh
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.ssh_callhome.engine.channels import TrafficStats
from custom_components.ssh_callhome.engine.extras import ExtraForward
from custom_components.ssh_callhome.engine.limits import ChannelGate, ConnectionLimits
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.visitors import (
    ANNOUNCE_INTERVAL,
    MAX_ANNOUNCED_PER_INTERVAL,
    InvalidNetwork,
    RefusalNotice,
    VisitorPolicy,
    VisitorRecord,
    parse_networks,
    visitor_of,
)
from harness.engine import connected, running, tcp_tunnel
from harness.memory import deep_size
from harness.network import (
    LOOPBACK,
    SilentServer,
    closed_at_once,
    connect_from,
    free_port,
    wait_until,
)
from harness.stepped_time import SteppedTime


def policy(allowed: str = "", refused: str = "") -> VisitorPolicy:
    return VisitorPolicy(parse_networks(allowed), parse_networks(refused))


def test_lists_take_addresses_and_networks_of_both_families_one_a_line() -> None:
    text = "203.0.113.0/24\n\n  2001:db8::/32 \n198.51.100.7\n::ffff:192.0.2.0/120\n"
    assert parse_networks(text) == (
        ip_network("203.0.113.0/24"),
        ip_network("2001:db8::/32"),
        ip_network("198.51.100.7/32"),
        ip_network("192.0.2.0/24"),  # an IPv4-mapped network is the IPv4 network
    )


@pytest.mark.parametrize(
    ("text", "number", "line"),
    [
        ("10.0.0.0/8\nexample.com", 2, "example.com"),
        ("192.168.1.5/24", 1, "192.168.1.5/24"),  # host bits set: which network was meant?
        ("10.0.0.0/33", 1, "10.0.0.0/33"),
        ("\n\n2001:db8::/129", 3, "2001:db8::/129"),
        ("10.0.0.0/8 # home", 1, "10.0.0.0/8 # home"),
    ],
)
def test_a_bad_line_is_named(text: str, number: int, line: str) -> None:
    with pytest.raises(InvalidNetwork) as bad:
        parse_networks(text)
    assert (bad.value.number, bad.value.line) == (number, line)


NETWORK_LINES = st.lists(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=4).map(lambda a: f"{a}/{a.max_prefixlen}"),
        st.text(max_size=30),
    ),
    max_size=5,
).map("\n".join)


@given(text=NETWORK_LINES, reported=st.one_of(st.ip_addresses().map(str), st.text(max_size=40)))
def test_any_list_parses_or_names_a_bad_line_and_any_originator_gets_a_verdict(
    text: str, reported: str
) -> None:
    bad: InvalidNetwork | None = None
    try:
        networks = parse_networks(text)
    except InvalidNetwork as error:
        bad = error
    if bad is not None:
        assert text.splitlines()[bad.number - 1].strip() == bad.line
        return
    assert len(networks) == sum(1 for line in text.splitlines() if line.strip())
    for visitors in (VisitorPolicy(networks, ()), VisitorPolicy((), networks)):
        assert visitors.refusal(reported) in (
            None,
            "in the refused networks",
            "not in the allowed networks",
            "not an address",
        )


def test_refused_wins_allowed_limits_and_mapped_addresses_are_ipv4() -> None:
    both = policy(allowed="192.0.2.0/24\n2001:db8::/32", refused="192.0.2.128/25")
    assert both.refusal("192.0.2.1") is None
    assert both.refusal("::ffff:192.0.2.1") is None
    assert both.refusal("2001:db8::5") is None
    assert both.refusal("192.0.2.200") == "in the refused networks"
    assert both.refusal("::ffff:192.0.2.200") == "in the refused networks"
    assert both.refusal("198.51.100.1") == "not in the allowed networks"
    assert both.refusal("not-an-address") == "not an address"
    refused_only = policy(refused="::ffff:198.51.100.0/120")
    assert refused_only.refusal("198.51.100.9") == "in the refused networks"
    assert refused_only.refusal("203.0.113.1") is None
    assert VisitorPolicy().refusal("not-an-address") is None  # no lists: everybody


def test_a_refused_visitor_takes_no_place_and_counts_apart() -> None:
    stats = TrafficStats()
    limits = ConnectionLimits(total=1, per_visitor=1, visitors=policy(refused="192.0.2.9"))
    gate = ChannelGate(limits, stats)
    gate.admit("192.0.2.1")  # the only place
    with pytest.raises(asyncssh.ChannelOpenError) as refused:
        gate.admit("192.0.2.9")
    assert refused.value.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
    with pytest.raises(asyncssh.ChannelOpenError) as full:
        gate.admit("192.0.2.2")
    assert full.value.code == asyncssh.OPEN_RESOURCE_SHORTAGE
    assert (stats.active_connections, stats.visitors_refused, stats.connections_refused) == (
        1,
        1,
        1,
    )
    assert list(gate.visitors.recent_originators) == ["192.0.2.1", "192.0.2.9", "192.0.2.2"]
    assert [(r.address, r.rule) for r in gate.visitors.refusals] == [
        ("192.0.2.9", "in the refused networks")
    ]


def test_refusals_are_announced_once_per_address_per_minute() -> None:
    now = 5000.0
    record = VisitorRecord(lambda: now)
    announced: list[RefusalNotice] = []
    remove = record.add_listener(announced.append)
    for second in range(0, 60, 5):  # one address, every 5 s for a minute
        now = 5000.0 + second
        record.refused("192.0.2.1", "rule")
    record.refused("192.0.2.2", "rule")
    now = 5000.0 + ANNOUNCE_INTERVAL
    record.refused("192.0.2.1", "rule")  # a minute after its first announcement
    assert [notice.address for notice in announced] == ["192.0.2.1", "192.0.2.2", "192.0.2.1"]
    assert len(record.refusals) == 14
    remove()
    now += ANNOUNCE_INTERVAL
    record.refused("192.0.2.3", "rule")
    assert announced[-1].address == "192.0.2.1"


async def test_tcp_mode_refuses_before_the_target_sees_a_byte(
    settings: TunnelSettings, silent_server: SilentServer
) -> None:
    extra_port = free_port()
    visitors = policy(allowed="127.0.0.0/29", refused="127.0.0.5")
    tunnel = tcp_tunnel(
        replace(
            settings,
            target_port=silent_server.port,
            extra_forwards=(ExtraForward(extra_port, LOOPBACK, silent_server.port),),
            limits=ConnectionLimits(visitors=visitors),
        )
    )
    async with running(tunnel):
        await wait_until(lambda: tunnel.state.extra_forwards_up == {extra_port}, 10, "up")
        for port in (settings.remote_port, extra_port):
            assert await closed_at_once(port, "127.0.0.5")  # in the refused list
            assert await closed_at_once(port, "127.0.0.9")  # outside the allowed list
        await asyncio.sleep(0.2)
        assert silent_server.held == []  # the target never accepted a connection
        assert tunnel.stats.visitors_refused == 4
        assert tunnel.stats.active_connections == 0
        for count, port in enumerate((settings.remote_port, extra_port), start=1):
            await connect_from(port, "127.0.0.6")  # allowed, not refused
            await wait_until(lambda n=count: len(silent_server.held) == n, 5, "target reached")  # type: ignore[misc]
        assert tunnel.stats.active_connections == 2
        assert connected(tunnel)
    refused = [(r.address, r.rule) for r in tunnel.visitors.refusals]
    assert (
        refused
        == [
            ("127.0.0.5", "in the refused networks"),
            ("127.0.0.9", "not in the allowed networks"),
        ]
        * 2
    )


FLOOD = 200_000
# What the record may hold after a flood, whatever its size: a few dozen announced visitors and
# the last refusals (about 6 KiB). Before the bound, 26 MiB.
FLOOD_MEMORY_BOUND = 64 * 1024


def flood(addresses: Iterator[str], time: SteppedTime, step: float) -> list[RefusalNotice]:
    """Refuse each address once, `step` seconds apart; the notices, once every interval ended."""
    record = VisitorRecord(time.clock, time.call_later)
    notices: list[RefusalNotice] = []
    record.add_listener(notices.append)
    before = deep_size(record)
    for address in addresses:
        record.refused(address, "rule")
        time.advance(step)
    held = deep_size(record)
    print(f"{len(notices)} notices; the record held {before} bytes, {held} after the flood")
    assert held < FLOOD_MEMORY_BOUND
    time.advance(ANNOUNCE_INTERVAL)
    assert time.pending == 0
    return notices


def split(notices: list[RefusalNotice]) -> tuple[list[str], list[int]]:
    """The visitors announced one by one, and what each summary counted."""
    announced = [notice.address for notice in notices if notice.address is not None]
    summaries = [notice.not_announced for notice in notices if notice.address is None]
    return announced, summaries


def test_a_flood_from_distinct_networks_is_bounded_per_interval() -> None:
    """200,000 visitors from as many /64s, 2 ms apart: 400 s, so 7 intervals."""
    time = SteppedTime()
    addresses = (f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::1" for i in range(FLOOD))
    notices = flood(addresses, time, 0.002)
    announced, summaries = split(notices)
    intervals = math.ceil(FLOOD * 0.002 / ANNOUNCE_INTERVAL)
    assert len(summaries) == intervals
    assert len(announced) == intervals * MAX_ANNOUNCED_PER_INTERVAL
    assert len(announced) + sum(summaries) == FLOOD  # every refusal told, one way or the other


def test_a_flood_from_one_ipv6_network_is_one_visitor() -> None:
    """200,000 addresses of one /64 in 40 s: one visitor, announced once."""
    time = SteppedTime()
    addresses = (f"2001:db8:0:7:{i >> 16:x}:{i & 0xFFFF:x}:0:1" for i in range(FLOOD))
    notices = flood(addresses, time, 0.0002)
    assert notices == [RefusalNotice("2001:db8:0:7:0:0:0:1")]


def test_ipv6_visitors_are_their_64_and_ipv4_ones_their_address() -> None:
    time = SteppedTime()
    record = VisitorRecord(time.clock, time.call_later)
    notices: list[RefusalNotice] = []
    record.add_listener(notices.append)
    for address in ("2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "192.0.2.1", "192.0.2.2"):
        record.refused(address, "rule")
    record.refused("::ffff:192.0.2.1", "rule")  # the same IPv4 visitor, spelt as IPv6
    record.refused("not an address", "rule")
    record.refused("nor this", "rule")  # every non-address is one visitor
    assert split(notices) == (
        ["2001:db8::1", "2001:db8:0:1::1", "192.0.2.1", "192.0.2.2", "not an address"],
        [],
    )
    assert visitor_of("2001:db8:0:1:ffff::9") == "2001:db8:0:1::/64"


def test_the_summary_comes_at_the_intervals_end_or_when_the_tunnel_stops() -> None:
    time = SteppedTime()
    record = VisitorRecord(time.clock, time.call_later)
    notices: list[RefusalNotice] = []
    record.add_listener(notices.append)
    for i in range(MAX_ANNOUNCED_PER_INTERVAL):
        record.refused(f"192.0.2.{i}", "rule")
    record.refused("192.0.2.0", "rule")  # a repeat: within the bound, no summary for it
    time.advance(ANNOUNCE_INTERVAL)
    assert split(notices) == ([f"192.0.2.{i}" for i in range(MAX_ANNOUNCED_PER_INTERVAL)], [])
    for i in range(MAX_ANNOUNCED_PER_INTERVAL + 3):
        record.refused(f"198.51.100.{i}", "rule")
        record.refused(f"198.51.100.{i}", "rule")
    time.advance(ANNOUNCE_INTERVAL / 2)
    assert split(notices)[1] == []  # not before the interval's end
    time.advance(ANNOUNCE_INTERVAL / 2)
    assert split(notices)[1] == [16]  # 3 held back, and 13 repeats: no event of their own
    record.refused("203.0.113.1", "rule")  # a new interval
    for i in range(MAX_ANNOUNCED_PER_INTERVAL):
        record.refused(f"203.0.113.{i + 2}", "rule")
    record.end_interval()  # the tunnel stops
    assert split(notices)[1] == [16, 1]
    assert time.pending == 0
