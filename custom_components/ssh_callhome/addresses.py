"""The address Home Assistant sees for a visitor that came through the tunnel.

The SSH server reports each visitor's address. A public one is passed on as it is. A local one
(loopback, private or link-local, as Home Assistant defines them) is what a reverse proxy on the
server, or sshd with GatewayPorts no, reports: passed on as it is, Home Assistant would treat the
whole internet as its local network (local-only users, trusted networks, one ban for everybody).
Such an address is mapped, one to one, into 64:ff9b:1::/48, the local-use IPv4/IPv6 translation
prefix of RFC 8215: never local to Home Assistant, never a real visitor's address, and distinct
per originator, so a ban still hits one client. List it in `trusted_proxies` to let a reverse
proxy's X-Forwarded-For through.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from homeassistant.util.network import is_local

from .engine import originator_address

STAND_IN_NETWORK = IPv6Network("64:ff9b:1::/48")
# IPv4 originators keep their 32 bits in the last 32 of 64:ff9b:1::/96 (RFC 6052 layout) ...
_IPV4_PREFIX = int(IPv6Address("64:ff9b:1::"))
# ... IPv6 originators are hashed into 64:ff9b:1:1::/64.
_IPV6_PREFIX = int(IPv6Address("64:ff9b:1:1::"))


def visitor_address(reported: str) -> str:
    """The address Home Assistant's HTTP server is to see for this visitor."""
    address = originator_address(reported)
    if address is None:
        return _hashed(reported)
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
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return str(IPv6Address(_IPV6_PREFIX | digest))
