"""aiohttp's request handler for one connection, with its C parser or its Python one, recorded."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import RequestPayloadError

from custom_components.ssh_callhome.engine import aiohttp_internals


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


async def _empty_answer(_request: web.BaseRequest) -> web.Response:
    return web.Response()


def answering_server() -> web.Server:
    """aiohttp's low-level server answering every request with an empty 200."""
    return web.Server(_empty_answer)


class RecordingParser:
    """aiohttp's parser for one connection, counting the parts and the bytes it is fed."""

    def __init__(self, parser: aiohttp_internals._Parser) -> None:
        self._parser = parser
        self.parts = 0
        self.fed = 0

    def feed_data(self, data: bytes) -> aiohttp_internals._Parsed:
        self.parts += 1
        self.fed += len(data)
        return self._parser.feed_data(data)

    def __getattr__(self, name: str) -> object:
        """The rest of the parser's API, as the bound passes it on."""
        return getattr(self._parser, name)


def recorded(handler: web.RequestHandler) -> RecordingParser:
    """Put a RecordingParser in place of `handler`'s parser (before the bound wraps it)."""
    recording = RecordingParser(handler._request_parser)  # type: ignore[arg-type]
    handler._request_parser = recording  # type: ignore[assignment]
    return recording
