"""Every reach into asyncssh's private API, each checked before use, each with a fallback.

asyncssh offers no public way to do these. Each reach first checks what it relies on (the
attribute and its type, the method and its parameters), as found in asyncssh 2.21.0 and 2.23.1.
Where another asyncssh differs, that optimisation is left off, the tunnel works as plain
asyncssh would, and one warning per process says which optimisation is off and why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, cast

import asyncssh

from .channels import SessionFactory
from .private_api import attribute_problem, method_problem, report_off

if TYPE_CHECKING:
    from asyncssh.packet import SSHPacketLogger

EARLY_LISTENER = "The early registration of a forward's listener"
QUIET_IGNORES = "The dropping of empty IGNORE packets"
ROUND_TRIP = "The round-trip time measurement"
KEX_NAME = "The naming of the key exchange method"
PACKET_CAP = "The cap on received packet lengths"
BATCHED_SENDS = "The writing of a loop pass's packets in one system call"

# What each reach expects of asyncssh's methods: their signatures, without annotations.
_LISTENER_INIT = (
    "(self, conn, session_factory, listen_host, listen_port, encoding, errors, window, max_pktsize)"
)
_SEND_PACKET = "(self, pkttype, *args, handler=None)"
_GLOBAL_REQUEST = "(self, request, *args)"
_RECEIVE_HEADER = "(self)"
_SEND = "(self, data)"

type PacketFilter = Callable[[int, tuple[bytes, ...]], bool]


@contextlib.contextmanager
def listener_registered_early(
    connection: asyncssh.SSHClientConnection,
    address: tuple[str, int],
    sessions: SessionFactory,
    window: int,
    max_pktsize: int,
) -> Iterator[None]:
    """For the block: a listener for (host, port) in asyncssh's table of remote listeners.

    asyncssh's own listener replaces it when the server grants the forward; on a refusal it is
    withdrawn, so nothing is left listening.
    """
    # Looked up, not imported: a renamed module or class must not stop the integration loading.
    listener_class = getattr(getattr(asyncssh, "listener", None), "SSHTCPClientListener", None)
    problem = attribute_problem(connection, "_remote_listeners", dict) or (
        "no asyncssh.listener.SSHTCPClientListener"
        if listener_class is None
        else method_problem(listener_class, "__init__", _LISTENER_INIT)
    )
    if problem is not None:
        report_off(EARLY_LISTENER, problem)
        yield
        return
    listeners = cast(dict[tuple[str, int], object], connection._remote_listeners)
    if address in listeners:
        yield
        return
    host, port = address
    make_listener = cast(Callable[..., object], listener_class)
    early = make_listener(connection, sessions, host, port, None, "strict", window, max_pktsize)
    listeners[address] = early
    try:
        yield
    finally:
        if listeners.get(address) is early:  # the request failed: nobody listens there
            del listeners[address]


def filter_sent_packets(connection: asyncssh.SSHClientConnection, drop: PacketFilter) -> None:
    """Have `connection` send every packet but those `drop(type, fields)` is true for."""
    problem = method_problem(type(connection), "send_packet", _SEND_PACKET)
    if problem is not None:
        report_off(QUIET_IGNORES, problem)
        return
    send_packet = connection.send_packet

    def send_unless_dropped(
        pkttype: int, *args: bytes, handler: SSHPacketLogger | None = None
    ) -> None:
        if not drop(pkttype, args):
            send_packet(pkttype, *args, handler=handler)

    connection.send_packet = send_unless_dropped  # type: ignore[method-assign]


def send_in_batches(connection: asyncssh.SSHClientConnection) -> None:
    """Have `connection` write the packets made in one event-loop pass to its socket at once.

    asyncssh writes each packet to its socket as soon as it is made: a system call per packet,
    and on each one the kernel hands the data to the SSH server. With many visitors, or a
    download, a pass of the loop makes many packets; here they are collected and written with
    one call (writelines, which gathers them without copying) as the loop's next pass begins.
    The packets keep their order, and each waits only for the rest of its pass.
    """
    if getattr(connection, "_transport", False) is None:
        return  # lost as it opened: it sends nothing more
    problem = method_problem(type(connection), "_send", _SEND) or attribute_problem(
        connection, "_transport", asyncio.WriteTransport
    )
    if problem is not None:
        report_off(BATCHED_SENDS, problem)
        return
    _PacketsOfOnePass(connection)


class _PacketsOfOnePass:
    """The packets a connection makes in one pass of the event loop; written together after."""

    def __init__(self, connection: asyncssh.SSHClientConnection) -> None:
        self._connection = connection
        transport = connection._transport
        assert transport is not None  # checked by send_in_batches
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        connection._send = self.add  # type: ignore[method-assign]

    def add(self, data: bytes) -> None:
        """What asyncssh's _send(data) does, for the whole pass at once."""
        # asyncssh sends nothing once the connection has let go of its transport. Closing, it
        # lets go right after making its last packet (the disconnect) and has the transport
        # aborted a turn later: that packet is queued before the abort, so it goes out first.
        if self._connection._transport is None:
            return
        if not self._pending:
            self._loop.call_soon(self._write)
        self._pending.append(data)

    def _write(self) -> None:
        packets, self._pending = self._pending, []
        # A transport that lost its connection meanwhile drops what it is given, as asyncssh's
        # own write would; a connection error is left to connection_lost, as asyncssh does.
        if not self._transport.is_closing():
            with contextlib.suppress(ConnectionError):
                self._transport.writelines(packets)


async def global_request(connection: asyncssh.SSHClientConnection, request: bytes) -> bool:
    """Send a global request and wait for its answer; False if asyncssh has no way for it.

    An answer of either kind counts: OpenSSH refuses requests it does not know, promptly.
    """
    problem = method_problem(
        type(connection), "_make_global_request", _GLOBAL_REQUEST, coroutine=True
    )
    if problem is not None:
        report_off(ROUND_TRIP, problem)
        return False
    make_request = cast(
        Callable[[bytes], Coroutine[Any, Any, object]],
        connection._make_global_request,
    )
    await make_request(request)
    return True


def kexinit_payloads(connection: asyncssh.SSHClientConnection) -> tuple[bytes, bytes] | None:
    """The client's and the server's KEXINIT messages, as asyncssh keeps them for the hash."""
    problem = attribute_problem(connection, "_client_kexinit", bytes) or attribute_problem(
        connection, "_server_kexinit", bytes
    )
    if problem is not None:
        report_off(KEX_NAME, problem)
        return None
    return connection._client_kexinit, connection._server_kexinit


def cap_packet_length(connection: asyncssh.SSHClientConnection, limit: int) -> None:
    """Have `connection` refuse any packet announcing more than `limit` bytes, at its header.

    asyncssh takes any length, even before the server's key is checked, and collects the bytes
    until they are all there; OpenSSH refuses more than 256 KiB. Call it from the client's
    connection_made, before any byte is received.
    """
    problem = method_problem(type(connection), "_recv_pkthdr", _RECEIVE_HEADER) or (
        attribute_problem(connection, "_pktlen", int)
    )
    if problem is not None:
        report_off(PACKET_CAP, problem)
        return
    receive_header = connection._recv_pkthdr

    def receive_bounded_header() -> bool:
        if not receive_header():
            return False
        length = connection._pktlen
        if length > limit:
            raise asyncssh.ProtocolError(f"Packet length {length} over the limit of {limit}")
        return True

    # asyncssh looks the method up on the connection each time it waits for a header.
    connection._recv_pkthdr = receive_bounded_header  # type: ignore[method-assign]
