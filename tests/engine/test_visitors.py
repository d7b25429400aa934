"""Networks allowed and refused: the lists, the gate, and a real OpenSSH server in TCP mode.

With GatewayPorts no (the test server's), sshd reports the loopback address a visitor's
connection came from: each visitor here connects from a loopback address of its own.
"""

from __future__ import annotations

import asyncio
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
    InvalidNetwork,
    VisitorPolicy,
    VisitorRecord,
    parse_networks,
)
from harness.engine import connected, running, tcp_tunnel
from harness.network import (
    LOOPBACK,
    SilentServer,
    closed_at_once,
    connect_from,
    free_port,
    wait_until,
)


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
    announced: list[str] = []
    remove = record.add_listener(announced.append)
    for second in range(0, 60, 5):  # one address, every 5 s for a minute
        now = 5000.0 + second
        record.refused("192.0.2.1", "rule")
    record.refused("192.0.2.2", "rule")
    now = 5000.0 + ANNOUNCE_INTERVAL
    record.refused("192.0.2.1", "rule")  # a minute after its first announcement
    assert announced == ["192.0.2.1", "192.0.2.2", "192.0.2.1"]
    assert len(record.refusals) == 14
    remove()
    now += ANNOUNCE_INTERVAL
    record.refused("192.0.2.3", "rule")
    assert announced[-1] == "192.0.2.1"


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
