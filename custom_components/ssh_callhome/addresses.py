"""The address Home Assistant sees for a visitor that came through the tunnel.

The SSH server reports each visitor's address. A public one is passed on as it is, in its
canonical form. A local one (loopback, private or link-local, as Home Assistant defines them) is
what a reverse proxy on the server, or sshd with GatewayPorts no, reports: passed on as it is,
Home Assistant would treat the whole internet as its local network (local-only users, trusted
networks, one ban for everybody). Such an address is mapped, one to one, into 64:ff9b:1::/48,
the local-use IPv4/IPv6 translation prefix of RFC 8215: never local to Home Assistant, never a
real visitor's address, and distinct per originator, so a ban still hits one client. List it in
`trusted_proxies` to let a reverse proxy's X-Forwarded-For through.

One to one over every originator: an originator inside 64:ff9b:1::/48 itself is never passed on
as it is (it could be another originator's stand-in, trusted as a proxy), nor is one with an IPv6
scope id (`fe80::1%eth0`: not an address Home Assistant can use, and server-chosen text) or one
that is no address at all. IPv4 originators keep their 32 bits; the others are hashed into
64:ff9b:1:1::/64 with 64 bits of BLAKE2b. To land on a given stand-in (a trusted proxy's), an
originator must be found by about 2**64 tries of the hash: out of reach. The hash is not keyed
per process, so a hashed stand-in (a proxy's on ::1, in `trusted_proxies`, or a ban) stays the
same across restarts.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from homeassistant.util.network import is_local

from .engine import originator_address

STAND_IN_NETWORK = IPv6Network("64:ff9b:1::/48")
# IPv4 originators keep their 32 bits in the last 32 of 64:ff9b:1::/96 (RFC 6052 layout) ...
_IPV4_PREFIX = int(IPv6Address("64:ff9b:1::"))
# ... everything else is hashed into 64:ff9b:1:1::/64: 64 bits of BLAKE2b.
_HASHED_PREFIX = int(IPv6Address("64:ff9b:1:1::"))
_HASH_BYTES = 8
# Sets these stand-ins apart from any other use of the hash.
_HASH_PERSON = b"ssh_callhome"


def visitor_address(reported: str) -> str:
    """The address Home Assistant's HTTP server is to see for this visitor."""
    address = originator_address(reported)
    if address is None or (isinstance(address, IPv6Address) and address.scope_id is not None):
        return _hashed(reported)
    if address in STAND_IN_NETWORK:
        return _hashed(str(address))
    if not is_local(address):
        return str(address)
    if isinstance(address, IPv4Address):
        return str(IPv6Address(_IPV4_PREFIX | int(address)))
    return _hashed(str(address))


def is_local_originator(reported: str) -> bool:
    """Whether the server reported a local address: one Home Assistant sees as a stand-in."""
    address = originator_address(reported)
    return address is None or is_local(address)


def _hashed(text: str) -> str:
    """A stand-in for `text`: a canonical address (no scope id) or, as it came, anything else.

    The two never meet: text that is a canonical address is hashed as that address.
    """
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=_HASH_BYTES, person=_HASH_PERSON
    ).digest()
    return str(IPv6Address(_HASHED_PREFIX | int.from_bytes(digest, "big")))
