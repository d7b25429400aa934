"""Remote forwards without the start-up race: no visitor is turned away while one is set up.

asyncssh registers a forward's listener only once its coroutine resumes after the server's
reply. A connection the server announces right behind that reply (same read from the socket) is
looked up before then and refused with "No such listener": the visitor's connection is reset
(measured with OpenSSH: 4 in 100 set-ups with visitors waiting). So an equivalent listener is
registered, under the same key, before the request goes out; asyncssh's own replaces it on
success, and it is withdrawn on failure. This reaches into asyncssh's private table: where that
table is not found (another asyncssh), the forward is requested as before, race included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncssh
from asyncssh.listener import SSHTCPClientListener

from .forwarding import SessionFactory

# What a visitor can make Home Assistant buffer per channel while its target reads nothing
# (asyncssh's default is 2 MiB); limits.py caps the channels. The README has the upload
# throughput this costs. max_pktsize stays asyncssh's default.
_WINDOW = 256 * 1024
_MAX_PACKET = 32768


async def listen(
    connection: asyncssh.SSHClientConnection, host: str, port: int, sessions: SessionFactory
) -> asyncssh.SSHListener:
    """Ask the server to listen on host:port; each connection it gets becomes a session."""
    with _accepting_early(connection, host, port, sessions):
        return await connection.create_server(
            sessions, host, port, window=_WINDOW, max_pktsize=_MAX_PACKET
        )


@contextlib.contextmanager
def _accepting_early(
    connection: asyncssh.SSHClientConnection, host: str, port: int, sessions: SessionFactory
) -> Iterator[None]:
    listeners = getattr(connection, "_remote_listeners", None)
    key = (host, port)
    if not isinstance(listeners, dict) or key in listeners:
        yield
        return
    early = SSHTCPClientListener[bytes](
        connection, sessions, host, port, None, "strict", _WINDOW, _MAX_PACKET
    )
    listeners[key] = early
    try:
        yield
    finally:
        if listeners.get(key) is early:  # the request failed: nobody listens there
            del listeners[key]
