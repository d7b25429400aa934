"""No empty SSH_MSG_IGNORE ahead of every packet: a CBC countermeasure our ciphers do not need.

Once encryption is on, asyncssh sends an empty SSH_MSG_IGNORE before each packet it sends. That
is RFC 4251's countermeasure (section 9.3.1) for CBC mode, where a packet's IV is the last cipher
block already on the wire. The connection never negotiates CBC (PREFERRED_CIPHERS offers GCM,
ChaCha20-Poly1305 and CTR only), and OpenSSH sends no such packet. Each one costs an encryption,
a socket write and a wake-up of the server: measured here, leaving them out makes a download
through the tunnel about 15 % faster and cheaper in CPU.

asyncssh offers no option for it: the connection's packet sending is filtered, on that one
connection (asyncssh_internals.filter_sent_packets), to drop exactly that packet (type 2, empty
string). Every other packet, an IGNORE with content included, goes out unchanged.
"""

from __future__ import annotations

import asyncssh

from .asyncssh_internals import filter_sent_packets

_MSG_IGNORE = 2
_EMPTY_STRING = b"\0\0\0\0"  # SSH's string encoding of b"": a zero length and nothing else


def drop_empty_ignore_packets(connection: asyncssh.SSHClientConnection) -> None:
    """Have `connection` send every packet but the empty IGNOREs asyncssh inserts."""
    filter_sent_packets(connection, _is_empty_ignore)


def _is_empty_ignore(pkttype: int, fields: tuple[bytes, ...]) -> bool:
    return pkttype == _MSG_IGNORE and fields == (_EMPTY_STRING,)
