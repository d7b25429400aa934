"""Every reach into aiohttp's private API, checked before use, with a fallback.

As in asyncssh_internals: each reach first checks what it relies on (as found in aiohttp 3.13);
where another aiohttp differs, that optimisation is left off, the tunnel works as plain aiohttp
would, and one warning per process says which optimisation is off and why.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from .asyncssh_internals import attribute_problem, report_off

FILE_RESPONSES = "The tunnel's way of sending files (larger chunks, headers with the first)"

type ProtocolFactory = Callable[[], asyncio.BaseProtocol]
type RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def with_tunnel_file_responses(server: ProtocolFactory, chunk_size: int) -> ProtocolFactory:
    """Protocols from aiohttp's `server` that send files as suits a tunnelled connection.

    aiohttp copies a file itself where the transport has no sendfile, as a tunnelled one has
    not: one executor round trip per chunk, 256 KiB unless the response says otherwise; these
    copy `chunk_size` bytes at a time. And aiohttp sends a file's headers at once, before its
    first chunk is read: here they wait for it, so a small file is one write (one SSH packet)
    instead of two.
    """

    def make_protocol() -> asyncio.BaseProtocol:
        protocol = server()
        _adapt_file_responses(protocol, chunk_size)
        return protocol

    return make_protocol


def _adapt_file_responses(protocol: asyncio.BaseProtocol, chunk_size: int) -> None:
    """Have `protocol` (aiohttp's, for one connection) adapt each of its file responses."""
    problem = _request_handler_problem(protocol) or _file_response_problem()
    if problem is not None:
        report_off(FILE_RESPONSES, problem, library=f"aiohttp {aiohttp.__version__}")
        return
    handle: RequestHandler = protocol._request_handler  # type: ignore[attr-defined]

    async def handle_for_the_tunnel(request: web.BaseRequest) -> web.StreamResponse:
        response = await handle(request)
        if isinstance(response, web.FileResponse):
            response._chunk_size = max(response._chunk_size, chunk_size)
            response._send_headers_immediately = False  # sent with the first chunk, or at EOF
        return response

    # aiohttp looks the handler up on the connection's protocol for each request.
    protocol._request_handler = handle_for_the_tunnel  # type: ignore[attr-defined]


def _request_handler_problem(protocol: asyncio.BaseProtocol) -> str | None:
    """Why `protocol` is not aiohttp's RequestHandler with a `_request_handler`; None if it is."""
    # Looked up, not imported: a renamed class must not stop the integration loading.
    handler_class = getattr(getattr(aiohttp, "web_protocol", None), "RequestHandler", None)
    if not isinstance(handler_class, type):
        return "no aiohttp.web_protocol.RequestHandler"
    if not isinstance(protocol, handler_class):
        return f"the server's protocol is {type(protocol).__name__}"
    if not callable(getattr(protocol, "_request_handler", None)):
        return "its _request_handler is not callable"
    return None


@functools.cache
def _file_response_problem() -> str | None:
    """Why a FileResponse has no int `_chunk_size` or bool `_send_headers_immediately`."""
    return attribute_problem(web.FileResponse(os.devnull), "_chunk_size", int) or attribute_problem(
        web.FileResponse, "_send_headers_immediately", bool
    )
