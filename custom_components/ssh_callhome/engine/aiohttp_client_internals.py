"""A bound on what aiohttp's client reads of a response: the one reach into its client side.

aiohttp 3.13.3's response parser keeps every header line a server sends: it has a `max_headers`
but does not enforce it. A server that streams header lines forever (50 MiB of them took Home
Assistant from 119 to 1,494 MiB, and the parsing held the event loop until a 3 s timeout fired
after 8.9 s) can then be the public URL or the heartbeat's endpoint. A chunked body's trailer is
header lines too, kept the same way, and a caller reading until the body ends never sees the
end of a trailer that has none (280 MiB in 0.96 s).

What this relies on: a session's `request_class` is a `ClientRequest` whose `send(conn)` is
awaited with the connection before the response's headers are read, and the connection's
transport (public asyncio API) delivers to `conn.protocol`; the session's middlewares see that
request and the response once its headers are read; the response's `content` (a StreamReader)
takes `on_eof` callbacks and an exception for its reader (`set_exception`, what aiohttp itself
uses). Between the transport and aiohttp's protocol goes a protocol that counts the response's
bytes, up to the end of the headers and in all; past either bound it aborts the connection
instead, so the parser never holds more than the bounds. Once the body has ended it steps
aside: a connection back in Home Assistant's shared pool carries no bound of ours. Fallback: if
the transport does not deliver to `conn.protocol` (another aiohttp layout), the request goes
unbounded, with its timeout as before.
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
# The most of a body the session's callers read: the public URL's check 16 KiB (public_url.py),
# the heartbeat none.
BODY_READ_AT_MOST = 16 * 1024
# Room beyond both: a chunked body's framing, and a larger body's bytes that arrive before its
# reader stops and closes. The probe's answer and a heartbeat service's are a few dozen bytes.
RESPONSE_MARGIN = 64 * 1024
# A whole response (headers, body, trailer) read at most: a trailer flood parsed within it costs
# about 4 MiB, as a header flood does.
MAX_RESPONSE_BYTES = MAX_RESPONSE_HEADER_BYTES + BODY_READ_AT_MOST + RESPONSE_MARGIN

# The blank line that ends a block of headers; aiohttp's response parser also takes bare LF.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# An interim response (100 Continue, 103 Early Hints): the real one follows it. 101 does not.
_INTERIM = re.compile(rb"HTTP/\d\.\d 1(?!01)\d\d\b")


class ResponseHeadersTooLarge(aiohttp.ClientError):
    """The server sent more than the session reads, of headers or of the whole response.

    The request is dropped. A trailer without end is header lines beyond the whole bound.
    """

    def __init__(
        self, what: str = "response headers", bound: int = MAX_RESPONSE_HEADER_BYTES
    ) -> None:
        super().__init__(f"{what} beyond {bound} bytes")


def _whole_response_too_large() -> ResponseHeadersTooLarge:
    return ResponseHeadersTooLarge("response (headers, body and trailer)", MAX_RESPONSE_BYTES)


class BoundedRequest(aiohttp.ClientRequest):
    """A request whose response is read up to the bounds above."""

    # Why the response was dropped, once it was.
    dropped: ResponseHeadersTooLarge | None = None
    _bound: _ResponseBound | None = None

    async def send(self, conn: Connection) -> aiohttp.ClientResponse:
        """Put the bound in place, then send as aiohttp does."""
        transport = conn.transport
        protocol = conn.protocol
        # Only where the transport delivers to aiohttp's protocol itself (see the module's text).
        if isinstance(transport, asyncio.Transport) and transport.get_protocol() is protocol:
            self._bound = _ResponseBound(transport, protocol, self)
            transport.set_protocol(self._bound)
        return await super().send(conn)

    def reading(self, response: aiohttp.ClientResponse) -> None:
        """Its headers are read: the bound now fails the body's reader, and ends with it."""
        if self._bound is not None:
            self._bound.reading(response.content)


async def name_responses_too_large(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: a request dropped at a bound fails as ResponseHeadersTooLarge.

    aiohttp itself sees only a connection that ended; the request knows why. Dropped after its
    headers were parsed, but before they were handed over, the response is closed here.
    """
    try:
        response = await handler(request)
    except aiohttp.ClientError:
        if isinstance(request, BoundedRequest) and request.dropped is not None:
            raise request.dropped from None
        raise
    if isinstance(request, BoundedRequest):
        if request.dropped is not None:
            response.close()
            raise request.dropped
        request.reading(response)
    return response


class _ResponseBound(asyncio.Protocol):
    """Between the transport and aiohttp's protocol until the response's body has ended."""

    def __init__(
        self,
        transport: asyncio.Transport,
        inner: ResponseHandler,
        request: BoundedRequest,
    ) -> None:
        self._transport = transport
        self._inner = inner
        self._request = request
        self._block = b""  # the header block being read, never longer than the bound
        self._earlier = 0  # bytes of interim responses before it
        self._headers_ended = False
        self._read = 0  # bytes of the response in all
        self._body: aiohttp.StreamReader | None = None

    def reading(self, body: aiohttp.StreamReader) -> None:
        """The caller reads `body` now; the bound steps aside when it ends (maybe at once)."""
        self._body = body
        body.on_eof(self._step_aside)

    def data_received(self, data: bytes) -> None:
        self._read += len(data)
        if not self._headers_ended and self._header_bytes(data) > MAX_RESPONSE_HEADER_BYTES:
            self._drop(ResponseHeadersTooLarge())
        elif self._read > MAX_RESPONSE_BYTES:
            self._drop(_whole_response_too_large())
        else:
            self._inner.data_received(data)

    def _header_bytes(self, data: bytes) -> int:
        """Header bytes so far, `data` included; notes whether the headers have ended."""
        searched_from = max(0, len(self._block) - 3)  # an end split between two reads
        self._block += data
        while (end := _END_OF_HEADERS.search(self._block, searched_from)) and _INTERIM.match(
            self._block
        ):
            self._earlier += end.end()
            self._block, searched_from = self._block[end.end() :], 0
        if end:
            self._headers_ended = True
            self._block = b""
            return self._earlier + end.end()
        return self._earlier + len(self._block)

    def _drop(self, error: ResponseHeadersTooLarge) -> None:
        """Beyond a bound: the reader fails with `error`, and the connection is aborted."""
        self._request.dropped = error
        self._fail_body()  # a reader waiting now wakes with it
        self._transport.abort()  # connection_lost follows, and aiohttp fails the read

    def _fail_body(self) -> None:
        if self._body is not None and self._request.dropped is not None:
            self._body.set_exception(self._request.dropped)

    def _step_aside(self) -> None:
        """The body has ended: later responses on the connection go to aiohttp directly."""
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._inner)

    def eof_received(self) -> None:
        self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)
        # aiohttp gave the body its own error for a cut connection: later reads get ours.
        self._fail_body()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def bounded_session_arguments() -> dict[str, Any]:
    """What a client session is created with to bound what it reads of its responses."""
    return {"request_class": BoundedRequest, "middlewares": (name_responses_too_large,)}
