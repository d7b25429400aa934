"""Remote forwards without the start-up race: no visitor is turned away while one is set up.

asyncssh registers a forward's listener only once its coroutine resumes after the server's
reply. A connection the server announces right behind that reply (same read from the socket) is
looked up before then and refused with "No such listener": the visitor's connection is reset
(measured with OpenSSH: 4 in 100 set-ups with visitors waiting). So an equivalent listener is
registered, under the same key, before the request goes out; asyncssh's own replaces it on
success, and it is withdrawn on failure. This reaches into asyncssh's private table
(asyncssh_internals.listener_registered_early): where that table is not as expected (another
asyncssh), the forward is requested as before, race included.
"""

from __future__ import annotations

import asyncssh

from .asyncssh_internals import listener_registered_early
from .channels import SessionFactory

# What a visitor can make Home Assistant buffer per channel while its target reads nothing
# (asyncssh's default is 2 MiB); limits.py caps the channels. The README has the upload
# throughput this costs. max_pktsize stays asyncssh's default.
_WINDOW = 256 * 1024
_MAX_PACKET = 32768


async def listen(
    connection: asyncssh.SSHClientConnection, host: str, port: int, sessions: SessionFactory
) -> asyncssh.SSHListener:
    """Ask the server to listen on host:port; each connection it gets becomes a session."""
    with listener_registered_early(connection, (host, port), sessions, _WINDOW, _MAX_PACKET):
        return await connection.create_server(
            sessions, host, port, window=_WINDOW, max_pktsize=_MAX_PACKET
        )
