"""Every reach into aiohttp's private API, checked before use, with a fallback.

As in asyncssh_internals: each reach first checks what it relies on (as found in aiohttp 3.13);
where another aiohttp differs, that optimisation is left off, the tunnel works as plain aiohttp
would, and one warning per process says which optimisation is off and why.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
from collections.abc import Awaitable, Callable
from typing import IO, Any

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from .private_api import attribute_problem, method_problem, report_off

FILE_RESPONSES = "The tunnel's way of sending files (larger chunks, headers with the first)"

type FileOpening = tuple[object, io.BufferedReader | None, os.stat_result, str | None]
type OpenFile = Callable[[web.BaseRequest, str], FileOpening]
type CopyFile = Callable[[AbstractStreamWriter, IO[Any], int, int], Awaitable[AbstractStreamWriter]]

type ProtocolFactory = Callable[[], asyncio.BaseProtocol]
type RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def with_tunnel_file_responses(server: ProtocolFactory, chunk_size: int) -> ProtocolFactory:
    """Protocols from aiohttp's `server` that send files as suits a tunnelled connection.

    aiohttp copies a file itself where the transport has no sendfile, as a tunnelled one has
    not: one executor round trip per chunk, 256 KiB unless the response says otherwise; these
    copy `chunk_size` bytes at a time. A file no larger than that is read whole in the
    executor job that opens it, which saves the round trip of reading it: a small file's
    request waits for one job instead of two. And aiohttp sends a file's headers at once,
    before its first chunk is read: here they wait for it, so a small file is one write (one
    SSH packet) instead of two.
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
            if request.method == hdrs.METH_GET and hdrs.RANGE not in request.headers:
                _ReadWithOpening(response, response._chunk_size)
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
    """Why a FileResponse lacks what the tunnel's way relies on; None if it has all of it.

    An int `_chunk_size` and a bool `_send_headers_immediately`; `_make_response`, which
    opens the file in the executor and returns (result, file or None, stat, encoding); and
    `_sendfile_fallback(writer, file, offset, count)`, which copies it.
    """
    response = web.FileResponse
    return (
        attribute_problem(response(os.devnull), "_chunk_size", int)
        or attribute_problem(response, "_send_headers_immediately", bool)
        or method_problem(response, "_make_response", "(self, request, accept_encoding)")
        or method_problem(
            response, "_sendfile_fallback", "(self, writer, fobj, offset, count)", coroutine=True
        )
    )


class _ReadWithOpening:
    """Reads a response's file whole in the executor job that opens it, when it is small.

    aiohttp opens the file in one executor job and reads each chunk in another; for a file
    that fits in one chunk, the read joins the opening, and the copy sends what was read.
    Anything else (a larger file, one that changed size meanwhile, a part of a file) is read
    and sent as aiohttp does.
    """

    def __init__(self, response: web.FileResponse, at_most: int) -> None:
        self._at_most = at_most
        self._content: bytes | None = None
        self._open: OpenFile = response._make_response
        self._copy: CopyFile = response._sendfile_fallback
        # aiohttp looks both up on the response when it calls them.
        response._make_response = self._open_and_read  # type: ignore[method-assign,assignment]
        response._sendfile_fallback = self._send_read  # type: ignore[method-assign]

    def _open_and_read(self, request: web.BaseRequest, accept_encoding: str) -> FileOpening:
        """The file opened as aiohttp opens it (in the executor), and read if it fits."""
        opening = self._open(request, accept_encoding)
        _, file, stat, _ = opening
        if file is not None and stat.st_size <= self._at_most:
            try:
                content = file.read(stat.st_size)
            except OSError:
                # Not the opening's error: aiohttp's own copy reads again and fails as it would.
                return opening
            # Shorter: the file was cut meanwhile; aiohttp's own copy says so as it does.
            self._content = content if len(content) == stat.st_size else None
        return opening

    async def _send_read(
        self, writer: AbstractStreamWriter, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        """The content read with the opening if it is what is asked for, else aiohttp's copy."""
        content, self._content = self._content, None
        if content is None or offset != 0 or count != len(content):
            return await self._copy(writer, fobj, offset, count)
        await writer.write(content)
        await writer.drain()
        return writer
