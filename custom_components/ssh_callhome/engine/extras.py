"""Extra forwards on the tunnel's connection.

Other services on the Home Assistant side (the SSH add-on's port 22, an MQTT broker's 1883), each
behind a remote port of its own. A forward to Home Assistant's own HTTP server is not carried
over TCP (every visitor would arrive from a local address): the builder gives it the main
forward's in-process target (own_server.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import asyncssh

from .channels import SessionFactory
from .const import VALID_PORTS
from .forwarding import tcp_target
from .limits import ChannelGate
from .listening import listen
from .session_target import SessionTarget
from .state import describe

_LOGGER = logging.getLogger(__name__)


# The word that, after a forward, has it send the PROXY protocol v2 header to its target.
PROXY_V2 = "proxy-v2"


class InvalidExtraForward(ValueError):
    """A line that is not `remote_port:host:port [proxy-v2]`, or a remote port given twice."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


@dataclass(frozen=True, slots=True)
class ExtraForward:
    """remote_port on the server, carried to host:port on the Home Assistant side.

    With proxy_v2, each connection starts with a PROXY protocol v2 header naming the visitor.
    With `in_process`, connections go to that target instead, not to host:port over TCP.
    """

    remote_port: int
    host: str
    port: int
    proxy_v2: bool = False
    in_process: SessionTarget | None = field(default=None, compare=False)

    def delivered_in_process(self, target: SessionTarget) -> ExtraForward:
        """The same forward, its connections handed to `target`."""
        return replace(self, in_process=target)

    def sessions(self, gate: ChannelGate) -> SessionFactory:
        """What each of its connections is handed to.

        Over TCP, its connections count among the extra forwards' share of the places
        (limits.py); handed to Home Assistant's own server, they are the main forward's, which
        fair places can close when idle.
        """
        if self.in_process is not None:
            return self.in_process(gate)
        return tcp_target(
            self.host, self.port, gate, proxy_header=self.proxy_v2, extra_forward=True
        )


def parse_extra_forwards(text: str) -> tuple[ExtraForward, ...]:
    """One forward a line, `remote_port:host:port` as in `ssh -R`, then maybe `proxy-v2`."""
    forwards: list[ExtraForward] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        forward = _forward(line.strip())
        if any(forward.remote_port == earlier.remote_port for earlier in forwards):
            raise InvalidExtraForward(line.strip())
        forwards.append(forward)
    return tuple(forwards)


def _forward(line: str) -> ExtraForward:
    # Only a last word that is exactly the option counts as one: any other line reads as before.
    spec, *option = line.rsplit(maxsplit=1)
    proxy_v2 = option == [PROXY_V2]
    remote_port, host, port = _fields(spec if proxy_v2 else line, line)
    return ExtraForward(remote_port, host, port, proxy_v2)


def _fields(spec: str, line: str) -> tuple[int, str, int]:
    remote, _, rest = spec.partition(":")
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
            await listen(connection, bind_address, forward.remote_port, forward.sessions(gate))
        except asyncssh.ChannelListenError as error:
            _LOGGER.debug(
                "Extra forward of port %d refused: %s", forward.remote_port, describe(error)
            )
        else:
            taken.add(forward.remote_port)
    return taken
