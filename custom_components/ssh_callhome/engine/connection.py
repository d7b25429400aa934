"""Opening the SSH connection: one place that decides how asyncssh is called."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from .asyncssh_internals import (
    cap_packet_length,
    global_request,
    kexinit_payloads,
    send_in_batches,
)
from .channels import SessionFactory, TrafficStats
from .ciphers import PREFERRED_CIPHERS
from .client_options import client_options
from .forwarding import tcp_target
from .ignore_packets import drop_empty_ignore_packets
from .limits import ChannelGate
from .listening import listen
from .server_hello import ServerSoftware, name_lists, read_server_hello
from .server_text import keep_asyncssh_records_on_one_line
from .settings import TunnelSettings
from .state import describe

_LOGGER = logging.getLogger(__name__)
# How long the session that turns the server's Nagle off may take.
_NAGLE_TIMEOUT = 5.0

# OpenSSH's own limit (PACKET_MAX_SIZE); RFC 4253 asks for 35000 bytes at least.
MAX_PACKET_LENGTH = 256 * 1024


class HostKeyChanged(asyncssh.HostKeyNotVerifiable):
    """The server presented a key other than the pinned one; nothing of ours was sent."""

    def __init__(self, presented: asyncssh.SSHKey) -> None:
        super().__init__(f"the server presented {presented.get_fingerprint()}")
        self.presented = presented


class _ClientCallbacks(asyncssh.SSHClient):
    """What asyncssh tells only through callbacks: why the connection ended, which key it saw."""

    def __init__(self, on_lost: Callable[[Exception | None], None] = lambda _exc: None) -> None:
        self._on_lost = on_lost
        self.presented_host_key: asyncssh.SSHKey | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        """Before the server's first byte: no packet of unbounded length (see README)."""
        cap_packet_length(conn, MAX_PACKET_LENGTH)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """Asked only for a key that is not the pinned one: remember it, and refuse it."""
        self.presented_host_key = key
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """The host key the server presents and which server software it is."""

    host_key: asyncssh.SSHKey
    software: ServerSoftware


async def fetch_host_key(host: str, port: int, connect_timeout: float) -> ServerIdentity:
    """The key the server presents, for the user to confirm before anything is sent.

    A first look at the server's hello names its software and the host-key algorithms it
    offers; the key is then fetched asking for ed25519 and ECDSA before RSA.
    """
    keep_asyncssh_records_on_one_line()
    hello = await read_server_hello(host, port, connect_timeout)
    # No authentication follows the key exchange: no key, no user name.
    options = await client_options(
        pinned=None,
        client_key=None,
        username="",
        connect_timeout=connect_timeout,
        client_factory=_ClientCallbacks,
    )
    # config=None here too: the function's own default would load ~/.ssh/config again.
    # The algorithms go to the call itself: its own default would replace the options' list.
    key = await asyncssh.get_server_host_key(
        host,
        port,
        config=None,
        options=options,
        server_host_key_algs=hello.preferred_host_key_algs or (),
    )
    if key is None:  # pragma: no cover - asyncssh returns None only for a keyless server
        raise asyncssh.HostKeyNotVerifiable("The server presented no host key")
    return ServerIdentity(key, hello.software)


async def open_connection(
    settings: TunnelSettings,
    on_lost: Callable[[Exception | None], None] = lambda _exc: None,
) -> asyncssh.SSHClientConnection:
    """Connect with the pinned host key and the entry's client key, nothing else.

    Raises HostKeyChanged when the server presents another key: the check happens during key
    exchange, before authentication, so the client key is never offered to such a server.
    """
    keep_asyncssh_records_on_one_line()
    callbacks = _ClientCallbacks(on_lost)
    options = await client_options(
        pinned=settings.host_key,
        client_key=settings.client_key,
        username=settings.username,
        client_factory=lambda: callbacks,
        connect_timeout=settings.connect_timeout,
        keepalive_interval=settings.keepalive_interval,
        keepalive_count_max=settings.keepalive_count_max,
        encryption_algs=PREFERRED_CIPHERS,
        preferred_auth="publickey",
    )
    try:
        # config=None here too: the function's own default would load ~/.ssh/config again.
        connection = await asyncssh.connect(
            settings.host, settings.port, config=None, options=options
        )
    except asyncssh.HostKeyNotVerifiable:
        if callbacks.presented_host_key is None:  # pragma: no cover - an undecodable key
            raise
        raise HostKeyChanged(callbacks.presented_host_key) from None
    drop_empty_ignore_packets(connection)
    send_in_batches(connection)
    return connection


async def request_forward(
    connection: asyncssh.SSHClientConnection,
    settings: TunnelSettings,
    session_factory: SessionFactory,
) -> asyncssh.SSHListener:
    """Ask the server to listen on the remote port; each connection it gets becomes a session."""
    return await listen(connection, settings.bind_address, settings.remote_port, session_factory)


async def check_tunnel(settings: TunnelSettings) -> None:
    """Connect and take the forward once, then release both: what the config flow verifies."""
    async with await open_connection(settings) as connection:
        gate = ChannelGate(settings.limits, TrafficStats())
        target = tcp_target(settings.target_host, settings.target_port, gate)
        listener = await request_forward(connection, settings, target)
        listener.close()
        await listener.wait_closed()


async def disable_server_nagle(connection: asyncssh.SSHClientConnection) -> None:
    """Have sshd turn Nagle's algorithm off on this connection's socket.

    sshd does so when a session starts, never for a connection that only forwards (`ssh -N`):
    forwarded replies then often wait about 40 ms for a delayed ACK. One short exec session is
    enough; with the restricted authorized_keys line it runs /bin/false, which changes nothing
    else. A server that refuses sessions costs only the speed-up.
    """
    try:
        async with asyncio.timeout(_NAGLE_TIMEOUT):
            await connection.run("true", check=False)
    except (asyncssh.Error, OSError) as error:
        _LOGGER.debug("No session for TCP_NODELAY on the server: %s", describe(error))


async def round_trip_ms(connection: asyncssh.SSHClientConnection) -> float | None:
    """The time a global request takes to be answered, on the SSH connection itself.

    The request is the one asyncssh's own keepalive sends; OpenSSH answers every such request,
    if only to say it does not know it. asyncssh offers no public call for it: None where the
    private one is not as expected.
    """
    start = time.perf_counter()
    if not await global_request(connection, b"keepalive@openssh.com"):
        return None
    return (time.perf_counter() - start) * 1000


def negotiated_kex(connection: asyncssh.SSHClientConnection) -> str:
    """The key exchange method in use: asyncssh keeps no record of it, both KEXINITs tell it.

    As SSH chooses it: the first method of the client's list that the server also offers.
    """
    payloads = kexinit_payloads(connection)
    if payloads is None:
        return "unknown"
    # The first name-list of each KEXINIT.
    client, server = (name_lists(payload)[0] for payload in payloads)
    return next((method for method in client if method in server), "unknown")
