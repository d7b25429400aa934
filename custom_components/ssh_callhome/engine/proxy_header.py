"""The PROXY protocol's version 2 header (haproxy's doc/proxy-protocol.txt, section 2.2).

A target that understands it (nginx `listen ... proxy_protocol`, HAProxy `accept-proxy`,
Mosquitto `enable_proxy_protocol 2`, Traefik's `proxyProtocol`) takes the visitor's address
from this header instead of from its connection, which comes from Home Assistant.
"""

from __future__ import annotations

import ipaddress
import struct

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_VERSION_2 = 0x20
# Commands, in the low 4 bits of the 13th byte.
_LOCAL = 0x0
_PROXY = 0x1
# The 14th byte: address family (high 4 bits) and transport protocol (low 4 bits).
_UNSPEC = 0x00
_TCP_OVER_IPV4 = 0x11
_TCP_OVER_IPV6 = 0x21
_PORTS = range(65536)


def proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The header for a TCP connection from `source` to `destination`, each (host, port).

    A source that is not an IP address and port leaves nothing to tell: the LOCAL command,
    with no address, has the receiver use the connection's own. A destination host that is not
    an IP address ("" when the server listens on all its addresses) is the unspecified address
    of the source's family. IPv4 and IPv6 together go as IPv6, the IPv4 one mapped into
    ::ffff:0:0/96, as HAProxy does.
    """
    source_host, source_port = source
    destination_host, destination_port = destination
    source_ip = _ip(source_host)
    if source_ip is None or source_port not in _PORTS or destination_port not in _PORTS:
        return _header(_LOCAL, _UNSPEC, b"")
    destination_ip = _ip(destination_host) or _unspecified_like(source_ip)
    if source_ip.version == destination_ip.version == 4:
        family = _TCP_OVER_IPV4
    else:
        family = _TCP_OVER_IPV6
        source_ip, destination_ip = _as_ipv6(source_ip), _as_ipv6(destination_ip)
    ports = struct.pack("!HH", source_port, destination_port)
    return _header(_PROXY, family, source_ip.packed + destination_ip.packed + ports)


def _header(command: int, family: int, addresses: bytes) -> bytes:
    return SIGNATURE + struct.pack("!BBH", _VERSION_2 | command, family, len(addresses)) + addresses


def _ip(host: str) -> IPAddress | None:
    """`host` as an IP address, if it is one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unspecified_like(address: IPAddress) -> IPAddress:
    return ipaddress.ip_address("0.0.0.0" if address.version == 4 else "::")  # noqa: S104


def _as_ipv6(address: IPAddress) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        return address
    return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed)
