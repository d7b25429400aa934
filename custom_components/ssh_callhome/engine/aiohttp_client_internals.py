"""A bound on the response headers aiohttp's client reads: the one reach into its client side.

aiohttp 3.13.3's response parser keeps every header line a server sends: it has a `max_headers`
but does not enforce it. A server that streams header lines forever (50 MiB of them took Home
Assistant from 119 to 1,494 MiB, and the parsing held the event loop until a 3 s timeout fired
after 8.9 s) can then be the public URL or the heartbeat's endpoint.

What this relies on: a session's `request_class` is a `ClientRequest` whose `send(conn)` is
awaited with the connection before the response's headers are read, and the connection's
transport (public asyncio API) delivers to `conn.protocol`. Between the two goes a protocol
that counts the bytes up to the end of the headers and passes them on; past the bound it aborts
the connection instead, so the parser never holds more than the bound. Once the headers have
ended it steps aside. Fallback: if the transport does not deliver to `conn.protocol` (another
aiohttp layout), the request goes unbounded, with its timeout as before.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection

# Response headers (status line included, interim 1xx responses too) read at most. Real
# responses, CSP and cookies included, stay within a few KiB; aiohttp's own cap on one line is
# 8 KiB, and this is 8 such lines. Parsed, they cost about 30 times as much: 2 MiB at worst.
MAX_RESPONSE_HEADER_BYTES = 64 * 1024

# The blank line that ends a block of headers; aiohttp's response parser also takes bare LF.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# An interim response (100 Continue, 103 Early Hints): the real one follows it. 101 does not.
_INTERIM = re.compile(rb"HTTP/\d\.\d 1(?!01)\d\d\b")


class ResponseHeadersTooLarge(aiohttp.ClientError):
    """The server sent more than MAX_RESPONSE_HEADER_BYTES of headers: the request is dropped."""

    def __init__(self) -> None:
        super().__init__(f"response headers beyond {MAX_RESPONSE_HEADER_BYTES} bytes")


class BoundedHeadersRequest(aiohttp.ClientRequest):
    """A request whose response headers are read up to MAX_RESPONSE_HEADER_BYTES."""

    headers_too_large = False

    async def send(self, conn: Connection) -> aiohttp.ClientResponse:
        """Put the bound in place, then send as aiohttp does."""
        transport = conn.transport
        protocol = conn.protocol
        # Only where the transport delivers to aiohttp's protocol itself (see the module's text).
        if isinstance(transport, asyncio.Transport) and transport.get_protocol() is protocol:
            transport.set_protocol(_HeaderBound(transport, protocol, self))
        return await super().send(conn)


async def name_headers_too_large(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: a request dropped at the bound fails as ResponseHeadersTooLarge.

    aiohttp itself sees only a connection that ended; the request knows why.
    """
    try:
        return await handler(request)
    except aiohttp.ClientError:
        if isinstance(request, BoundedHeadersRequest) and request.headers_too_large:
            raise ResponseHeadersTooLarge from None
        raise


class _HeaderBound(asyncio.Protocol):
    """Between the transport and aiohttp's protocol until the response's headers have ended."""

    def __init__(
        self,
        transport: asyncio.Transport,
        inner: ResponseHandler,
        request: BoundedHeadersRequest,
    ) -> None:
        self._transport = transport
        self._inner = inner
        self._request = request
        self._block = b""  # the header block being read, never longer than the bound
        self._earlier = 0  # bytes of interim responses before it

    def data_received(self, data: bytes) -> None:
        searched_from = max(0, len(self._block) - 3)  # an end split between two reads
        self._block += data
        while (end := _END_OF_HEADERS.search(self._block, searched_from)) and _INTERIM.match(
            self._block
        ):
            self._earlier += end.end()
            self._block, searched_from = self._block[end.end() :], 0
        header_bytes = self._earlier + (end.end() if end else len(self._block))
        if header_bytes > MAX_RESPONSE_HEADER_BYTES:
            self._request.headers_too_large = True
            self._transport.abort()  # connection_lost follows, and aiohttp fails the read
            return
        if end:
            self._step_aside()
        self._inner.data_received(data)

    def _step_aside(self) -> None:
        """The headers have ended: the body, and later responses, go to aiohttp directly."""
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._inner)

    def eof_received(self) -> None:
        self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def bounded_session_arguments() -> dict[str, Any]:
    """What a client session is created with to bound its responses' headers."""
    return {"request_class": BoundedHeadersRequest, "middlewares": (name_headers_too_large,)}
