"""Whether a forward's `host:port` is Home Assistant's own HTTP server, however it is spelt.

A forward carried over TCP to Home Assistant's own port arrives from a local address: every
visitor is local to Home Assistant (local-only users log in, a trusted_networks login applies)
and Webhooks only is bypassed. The builder hands such forwards to Home Assistant in process
instead, as the main forward is. So every spelling must be caught: loopback names and addresses
(127.0.0.0/8, ::1, localhost and *.localhost, 127.1, 2130706433), the wildcard (0.0.0.0, ::, 0),
the names and addresses Home Assistant's `http` listens on, this machine's own addresses and
host name, and `homeassistant`, Home Assistant's name on the Supervisor's network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from homeassistant.core import HomeAssistant

from .engine import originator_address

_LOGGER = logging.getLogger(__name__)

# Names that mean Home Assistant's machine even where they do not resolve here (the Supervisor's
# network name, seen from inside an add-on's network, resolves to Home Assistant itself).
_OWN_NAMES = frozenset({"localhost", "homeassistant"})
# A name that does not resolve within this is judged by its spelling alone: setting up an entry
# must not wait long for a DNS server that is down (the resolver's own retries take 10 s and more).
RESOLVE_TIMEOUT = 5.0

# An address family and a socket address as getaddrinfo gives them.
type _SocketAddress = tuple[int, tuple[Any, ...]]


async def async_is_home_assistant_http(hass: HomeAssistant, host: str, port: int) -> bool:
    """Whether a TCP connection to host:port would end at Home Assistant's own HTTP server."""
    if port != hass.http.server_port:
        return False
    name = host.lower().rstrip(".")
    if name in _own_names(hass) or name.endswith(".localhost"):
        return True
    return any(_is_own_address(hass, address) for address in await _resolved(hass, host, port))


def _own_names(hass: HomeAssistant) -> set[str]:
    """Fixed names, this machine's host name, and the hosts Home Assistant's http listens on."""
    listened_on = {server_host.lower() for server_host in hass.http.server_host or ()}
    return {*_OWN_NAMES, socket.gethostname().lower(), *listened_on}


async def _resolved(hass: HomeAssistant, host: str, port: int) -> list[_SocketAddress]:
    """Every address `host` stands for, as the connection would resolve it (127.1 included).

    A name that does not resolve (now) gives none: a connection to it would fail as well.
    """
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await hass.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as error:
        _LOGGER.debug("A forward's target does not resolve now: %s", type(error).__name__)
        return []
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]


def _is_own_address(hass: HomeAssistant, resolved: _SocketAddress) -> bool:
    family, sockaddr = resolved
    # ::ffff:127.0.0.1 connects to 127.0.0.1: read as the visitor lists read an address.
    address = originator_address(str(sockaddr[0]).partition("%")[0])
    if address is None:  # getaddrinfo gives addresses only
        return False
    if address.is_loopback or address.is_unspecified:
        return True
    if str(address) in (hass.http.server_host or ()):
        return True
    return _assigned_here(family, sockaddr)


def _assigned_here(family: int, sockaddr: tuple[Any, ...]) -> bool:
    """Whether the address is one of this machine's own: only those can be bound to.

    A bind reaches no network and works the same on every system Home Assistant runs on; the
    address as resolved keeps a link-local address's scope.
    """
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((sockaddr[0], 0, *sockaddr[2:]))
        return True
    return False
