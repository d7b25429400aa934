"""Extra forwards on the tunnel's connection.

Other services on the Home Assistant side (the SSH add-on's port 22, an MQTT broker's 1883), each
behind a remote port of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import asyncssh

from .const import VALID_PORTS
from .forwarding import tcp_target
from .limits import ChannelGate
from .listening import listen
from .state import describe

_LOGGER = logging.getLogger(__name__)


class InvalidExtraForward(ValueError):
    """A line that is not `remote_port:host:port`, or a remote port given twice."""


@dataclass(frozen=True, slots=True)
class ExtraForward:
    """remote_port on the server, carried to host:port on the Home Assistant side."""

    remote_port: int
    host: str
    port: int


def parse_extra_forwards(text: str) -> tuple[ExtraForward, ...]:
    """One forward a line, `remote_port:host:port` as in `ssh -R`."""
    forwards = []
    for line in text.splitlines():
        if not line.strip():
            continue
        remote_port, host, port = _fields(line.strip())
        forwards.append(ExtraForward(remote_port, host, port))
    if len({forward.remote_port for forward in forwards}) != len(forwards):
        raise InvalidExtraForward("a remote port appears twice")
    return tuple(forwards)


def _fields(line: str) -> tuple[int, str, int]:
    remote, _, rest = line.partition(":")
    host, _, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    # Not printable: control characters, lone surrogates; no host name has them.
    if not host or not host.isprintable():
        raise InvalidExtraForward(line)
    return _port(remote, line), host, _port(port, line)


def _port(text: str, line: str) -> int:
    """A port written in ASCII digits.

    `isdigit()` also accepts '²', which `int()` refuses, and '٣', which it reads as 3.
    """
    if not (text.isascii() and text.isdigit()) or int(text) not in VALID_PORTS:
        raise InvalidExtraForward(line)
    return int(text)


async def take_extra_forwards(
    connection: asyncssh.SSHClientConnection,
    bind_address: str,
    wanted: Iterable[ExtraForward],
    gate: ChannelGate,
) -> set[int]:
    """Ask the server for each forward; returns the remote ports it granted."""
    taken = set()
    for forward in wanted:
        try:
            await listen(
                connection,
                bind_address,
                forward.remote_port,
                tcp_target(forward.host, forward.port, gate),
            )
        except asyncssh.ChannelListenError as error:
            _LOGGER.debug(
                "Extra forward of port %d refused: %s", forward.remote_port, describe(error)
            )
        else:
            taken.add(forward.remote_port)
    return taken
