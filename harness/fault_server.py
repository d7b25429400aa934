"""An in-process asyncssh server whose faults a test switches on and off."""

from __future__ import annotations

import contextlib
from unittest.mock import patch

import asyncssh

from .network import LOOPBACK


class FaultServer:
    """Accepts one client key; can refuse forwards and drop connections on demand."""

    def __init__(self, client_key: asyncssh.SSHKey) -> None:
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.refuse_forwards = 0
        self.connections: list[asyncssh.SSHServerConnection] = []
        self.forward_requests = 0
        # When set, what the client opens to a port on the server (the probe's way in) goes
        # nowhere: the forward is up, but nothing reaches it. Counted in `black_holed`.
        self.black_hole = False
        self.black_holed = 0
        # When set, each client is sent away with this reason as soon as it asks to log in.
        self.disconnect_reason: str | None = None
        # The software version in the banner (after "SSH-2.0-"), when not asyncssh's own.
        self.version: bytes | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        assert self._acceptor is not None
        return int(self._acceptor.get_port())

    async def start(self) -> None:
        """Listen on a free loopback port."""
        with contextlib.ExitStack() as stack:
            if (version := self.version) is not None:
                # asyncssh refuses a version that is not printable ASCII; a hostile server
                # sends what it likes.
                stack.enter_context(
                    patch.object(asyncssh.connection, "_validate_version", lambda _v: version)
                )
            self._acceptor = await asyncssh.listen(
                LOOPBACK,
                0,
                server_host_keys=[self.host_key],
                authorized_client_keys=self.authorized,
                server_factory=lambda: _Handler(self),
                config=None,
            )

    async def stop(self) -> None:
        """Stop listening and end every connection."""
        for connection in self.connections:
            connection.abort()
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

    async def open_forwarded(
        self, listen_host: str, listen_port: int, orig_host: str, orig_port: int = 40000
    ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        """A connection to the client's forward, reported as coming from `orig_host`.

        A real server reports the address a visitor connected from; this one says what the
        test likes (a stand-in address, a scope id with a line break).
        """
        return await self.connections[-1].open_connection(
            listen_host, listen_port, orig_host, orig_port
        )

    def drop_all(self) -> None:
        """End every connection abruptly, as a crashed server or a reset link would."""
        for connection in self.connections:
            connection.abort()


class _Silence(asyncssh.SSHTCPSession[bytes]):
    """A connection that is accepted and never answered."""


class _Handler(asyncssh.SSHServer):
    def __init__(self, server: FaultServer) -> None:
        self._server = server
        self._connection: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._server.connections.append(conn)
        self._connection = conn

    def begin_auth(self, username: str) -> bool:
        reason = self._server.disconnect_reason
        if reason is not None and self._connection is not None:
            self._connection.disconnect(asyncssh.DISC_HOST_NOT_ALLOWED_TO_CONNECT, reason)
        return True

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._server.forward_requests += 1
        if self._server.refuse_forwards > 0:
            self._server.refuse_forwards -= 1
            return False
        return True

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool | asyncssh.SSHTCPSession[bytes]:
        if self._server.black_hole:
            self._server.black_holed += 1
            return _Silence()
        # asyncssh connects for real, here to its own listener for the client's forward.
        return True
