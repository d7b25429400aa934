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

FILE_CHUNKS = "The larger file chunks on tunnelled connections"

type ProtocolFactory = Callable[[], asyncio.BaseProtocol]
type RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def with_file_chunks(server: ProtocolFactory, chunk_size: int) -> ProtocolFactory:
    """Protocols from aiohttp's `server` that copy a file response `chunk_size` bytes at a time.

    aiohttp copies a file itself where the transport has no sendfile, as a tunnelled one has
    not: one executor round trip per chunk, 256 KiB unless the response says otherwise.
    Connections that do have sendfile never use the chunk size.
    """

    def make_protocol() -> asyncio.BaseProtocol:
        protocol = server()
        _copy_files_in_chunks(protocol, chunk_size)
        return protocol

    return make_protocol


def _copy_files_in_chunks(protocol: asyncio.BaseProtocol, chunk_size: int) -> None:
    """Have `protocol` (aiohttp's, for one connection) give its file responses `chunk_size`."""
    problem = _request_handler_problem(protocol) or _file_response_problem()
    if problem is not None:
        report_off(FILE_CHUNKS, problem, library=f"aiohttp {aiohttp.__version__}")
        return
    handle: RequestHandler = protocol._request_handler  # type: ignore[attr-defined]

    async def handle_with_chunks(request: web.BaseRequest) -> web.StreamResponse:
        response = await handle(request)
        if isinstance(response, web.FileResponse) and response._chunk_size < chunk_size:
            response._chunk_size = chunk_size
        return response

    # aiohttp looks the handler up on the connection's protocol for each request.
    protocol._request_handler = handle_with_chunks  # type: ignore[attr-defined]


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
    """Why a FileResponse has no int `_chunk_size`; None if it has."""
    return attribute_problem(web.FileResponse(os.devnull), "_chunk_size", int)
