"""Every reach into asyncio's private API (its TLS protocol), checked before use, with a fallback.

When Home Assistant serves HTTPS itself, TLS sits between a channel and aiohttp as in asyncio's
own TLS servers: asyncio's SSLProtocol, which is not documented API. Its transport tells
loop.sendfile() to copy files itself (a "fallback" mode): 16 KiB per executor round trip,
written past aiohttp. The tunnel's transport says instead that it has no sendfile at all, as the
plain channel does (bridge.ChannelTransport), so that aiohttp copies files itself, the tunnel's
way (aiohttp_internals.with_tunnel_file_responses: 1 MiB chunks, headers with the first). As in
asyncssh_internals: where asyncio differs, that is left off and one warning says so; files then
go as asyncio sends them, which aiohttp_internals sees per response.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from asyncio import constants, sslproto
from typing import NoReturn, override

from .private_api import attribute_problem, method_problem, report_off

_LOGGER = logging.getLogger(__name__)

TLS_FILES = "Files over HTTPS the tunnel's way (aiohttp's copy instead of asyncio's sendfile)"


def tls_server(protocol: asyncio.BaseProtocol, context: ssl.SSLContext) -> sslproto.SSLProtocol:
    """`protocol` behind TLS with the server's own context, as asyncio's TLS servers set it up.

    Not loop.start_tls: that upgrades a connection whose protocol is connected already. It
    begins a turn of the loop after the channel opened, when the visitor's ClientHello may have
    come and gone, and hands the protocol its transport a turn after the handshake, when the
    first request may have been delivered already. Here the handshake begins as the channel
    opens, and the protocol learns its transport before it gets any data. A failed handshake
    aborts the channel (through its transport's _force_close). SSLProtocol is not documented
    API: the tests of HTTPS through the tunnel hold it to all of this.
    """
    loop = asyncio.get_running_loop()
    handshake: asyncio.Future[None] = loop.create_future()
    handshake.add_done_callback(_log_failed_handshake)
    problem = _tls_transport_problem()
    if problem is not None:
        report_off(TLS_FILES, problem, library="asyncio's sslproto")
        return sslproto.SSLProtocol(loop, protocol, context, handshake, server_side=True)
    return _TunnelTLS(loop, protocol, context, handshake, server_side=True)


def _log_failed_handshake(handshake: asyncio.Future[None]) -> None:
    if not handshake.cancelled() and (error := handshake.exception()) is not None:
        _LOGGER.debug("TLS handshake through the tunnel failed: %s", error)


@functools.cache
def _tls_transport_problem() -> str | None:
    """Why SSLProtocol's transport cannot be the tunnel's; None if it can.

    SSLProtocol makes its transport, once, in `_get_app_transport()`, from
    `_SSLProtocolTransport(loop, ssl_protocol)`, whose `_sendfile_compatible` loop.sendfile()
    asks first; until then `_app_transport` is None and `_app_transport_created` false.
    """
    transport = getattr(sslproto, "_SSLProtocolTransport", None)
    if not isinstance(transport, type):
        return "no _SSLProtocolTransport"
    return (
        method_problem(sslproto.SSLProtocol, "_get_app_transport", "(self)")
        or method_problem(transport, "__init__", "(self, loop, ssl_protocol)")
        or attribute_problem(transport, "_sendfile_compatible", constants._SendfileMode)
    )


class _TransportWithoutSendfile(sslproto._SSLProtocolTransport):
    """asyncio's TLS transport, but for what loop.sendfile() asks first."""

    @property
    @override
    def _sendfile_compatible(self) -> NoReturn:  # type: ignore[override]
        """Not here, copy it yourself: how aiohttp learns that a loop has no sendfile.

        aiohttp's FileResponse then copies the file in chunks itself, through its own writer.
        """
        raise NotImplementedError


class _TunnelTLS(sslproto.SSLProtocol):
    """asyncio's SSLProtocol with the tunnel's transport."""

    def _get_app_transport(self) -> sslproto._SSLProtocolTransport:
        """The transport, made the first time as asyncio makes it, but of the tunnel's class."""
        state = vars(self)  # typeshed knows neither this method nor the flag
        if state.get("_app_transport") is None and state.get("_app_transport_created") is False:
            state["_app_transport"] = _TransportWithoutSendfile(self._loop, self)
            state["_app_transport_created"] = True
        transport: sslproto._SSLProtocolTransport = super()._get_app_transport()  # type: ignore[misc]
        return transport
