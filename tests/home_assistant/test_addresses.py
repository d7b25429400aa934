"""The address Home Assistant sees for a visitor: public ones kept, local ones never local."""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv6Address, ip_address

import pytest

from homeassistant.util.network import is_local

from custom_components.ssh_callhome.addresses import STAND_IN_NETWORK, visitor_address


@pytest.mark.parametrize("public", ["203.0.113.7", "2001:db8:1::5", "8.8.8.8"])
def test_public_addresses_pass_unchanged(public: str) -> None:
    assert visitor_address(public) == public


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("127.0.0.1", "64:ff9b:1::7f00:1"),
        ("127.0.0.2", "64:ff9b:1::7f00:2"),
        ("10.8.0.5", "64:ff9b:1::a08:5"),
        ("192.168.1.20", "64:ff9b:1::c0a8:114"),
        ("169.254.3.4", "64:ff9b:1::a9fe:304"),
        ("::ffff:127.0.0.1", "64:ff9b:1::7f00:1"),
    ],
)
def test_local_ipv4_maps_one_to_one(local: str, expected: str) -> None:
    assert visitor_address(local) == expected


@pytest.mark.parametrize("local", ["::1", "fd00::1", "fe80::1", "not an address", ""])
def test_local_ipv6_and_oddities_hash_into_the_range(local: str) -> None:
    mapped = visitor_address(local)
    assert ip_address(mapped) in STAND_IN_NETWORK
    assert mapped == visitor_address(local)  # the same visitor keeps its address


def test_stand_ins_are_never_local_and_stay_distinct() -> None:
    originals = [f"127.0.{i}.{j}" for i in range(4) for j in range(256)] + ["::1", "fd00::2"]
    mapped = {visitor_address(original) for original in originals}
    assert len(mapped) == len(originals)
    assert not any(is_local(ip_address(address)) for address in mapped)


IPV4_STAND_INS = [visitor_address(f"127.0.{i}.{j}") for i in range(4) for j in range(256)]


def test_a_stand_in_claimed_as_an_originator_is_not_passed_on() -> None:
    """The server reports another originator's stand-in: it gets one of its own instead."""
    claimed = [*IPV4_STAND_INS, visitor_address("::1"), visitor_address("not an address")]
    claimed += ["64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"]  # the network's ends
    mapped = [visitor_address(address) for address in claimed]
    assert all(ip_address(address) in STAND_IN_NETWORK for address in mapped)
    assert not set(mapped) & set(claimed)  # none is passed on, none lands on a claimed one
    assert len(set(mapped)) == len(claimed)


@pytest.mark.parametrize(
    "forged",
    [
        "fe80::1%eth0",
        "fe80::1%eth1",  # the same address on another link: another originator
        "2001:db8::1%eth0",
        "fe80::1%eth0\nFAKE LOG LINE",
        "64:ff9b:1::7f00:1%x",
        "0:0:0:0:0:0:0:1",  # ::1 spelt out: the same originator as ::1, no other
    ],
)
def test_scoped_or_oddly_spelt_originators_meet_no_other(forged: str) -> None:
    mapped = visitor_address(forged)
    assert "%" not in mapped
    assert mapped == str(IPv6Address(mapped))  # canonical
    others = [*IPV4_STAND_INS, *(visitor_address(a) for a in ("fe80::1", "2001:db8::1"))]
    assert mapped not in others
    if forged == "0:0:0:0:0:0:0:1":
        assert mapped == visitor_address("::1")


def test_hashed_stand_ins_stay_across_restarts() -> None:
    """A proxy on ::1 listed in trusted_proxies, or a ban, must hold after a restart."""
    script = (
        "from custom_components.ssh_callhome.addresses import visitor_address as v; print(v('::1'))"
    )
    other_process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other_process == visitor_address("::1")
    assert ip_address(other_process) in STAND_IN_NETWORK
    assert visitor_address("203.0.113.7") == "203.0.113.7"  # public ones stay as they are
