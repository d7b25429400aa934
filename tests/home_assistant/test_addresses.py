"""The address Home Assistant sees for a visitor: public ones kept, local ones never local."""

from __future__ import annotations

from ipaddress import ip_address

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
