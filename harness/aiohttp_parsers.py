"""aiohttp's request handler for one connection, with its C parser or its Python one."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import RequestPayloadError


def request_handler(server: web.Server, python_parser: bool = False) -> web.RequestHandler:
    """A handler of `server`'s; with `python_parser`, aiohttp's Python parser in place of C's.

    The Python parser is what aiohttp uses without its C extensions (AIOHTTP_NO_EXTENSIONS).
    """
    handler = server()
    assert isinstance(handler, web.RequestHandler)
    if python_parser:
        handler._request_parser = HttpRequestParserPy(
            handler,
            asyncio.get_running_loop(),
            2**16,
            max_line_size=8190,
            max_field_size=8190,
            payload_exception=RequestPayloadError,
        )
    return handler
