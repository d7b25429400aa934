"""Forwarded SSH channels handed to an asyncio protocol in this process.

That protocol is Home Assistant's own HTTP server, which so sees the visitor's address instead of a
loopback connection (or, exposing webhooks only, a small application beside it). The channel is
presented to it as an asyncio transport. Flow control is passed on both ways (asyncssh's window to
the protocol's pause_writing, the protocol's pause_reading to the channel), so nothing is buffered
without bound. File downloads take aiohttp's own chunked copy. When Home Assistant serves HTTPS
itself, TLS sits between the channel and the protocol as in asyncio's own TLS servers
(asyncio_internals.py), and files take aiohttp's copy there too. Each channel takes a place at its
tunnel's gate (limits.py), which may give it to a newcomer while the channel waits for a request or
its request has stalled. A channel is closed when aiohttp has parsed no request in time (aiohttp
itself waits for one for an hour), when a request's head grows beyond its bound, when it waits too
long for the next request, when aiohttp holds more of its input than a client sends ahead (pipelined
requests, what follows an upgrade; aiohttp_internals.py), or when nothing moved for too long while a
request is under way: no byte of its body reached aiohttp's payload, none of its answer went out. A
channel closed here gives its place up at once, and keeps counting against its visitor until the SSH
server has closed it too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import transports
from collections.abc import Callable, Iterable
from typing import NoReturn, override

import asyncssh

from .aiohttp_internals import RequestEvents, RequestWatch, bound_requests
from .asyncio_internals import tls_server
from .channels import ProtocolFactory, SessionFactory, TrafficStats
from .limits import Admission, ChannelGate

_LOGGER = logging.getLogger(__name__)

# Where an HTTP request's header ends.
_HEADER_END = b"\r\n\r\n"


def in_process_target(
    protocol_factory: Callable[[], ProtocolFactory | None],
    visitor_address: Callable[[str], str],
    ssl_context: Callable[[], ssl.SSLContext | None],
    gate: ChannelGate,
) -> SessionFactory:
    """Sessions that feed each channel to a protocol from `protocol_factory()`.

    `protocol_factory()` is None while the server is not up: such channels are refused, the
    tunnel stays. `visitor_address` maps the address the SSH server reports for the visitor to
    the one the protocol sees.
    """

    async def open_session(orig_host: str, orig_port: int) -> asyncssh.SSHTCPSession[bytes]:
        factory = protocol_factory()
        if factory is None:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, "the HTTP server has not started"
            )
        admission = gate.admit(orig_host)
        peer = (visitor_address(orig_host), orig_port)
        return ChannelSession(factory, peer, ssl_context(), gate, admission)

    return open_session


class ChannelSession(asyncssh.SSHTCPSession[bytes]):
    """asyncssh's side: passes what the channel does to the transport and its protocol.

    An exception escaping an asyncssh callback would close the whole SSH connection, so every
    call into the protocol is guarded: a failing protocol costs its own channel only.
    """

    def __init__(
        self,
        protocol_factory: ProtocolFactory,
        peer: tuple[str, int],
        tls: ssl.SSLContext | None,
        gate: ChannelGate,
        admission: Admission,
    ) -> None:
        self._protocol_factory = protocol_factory
        self._peer = peer
        self._tls = tls
        self._stats = gate.stats
        self._limits = gate.limits
        self._admission = admission
        self._deadline: asyncio.TimerHandle | None = None
        self._transport: ChannelTransport | None = None
        self._watch: RequestWatch | None = None
        self._progress = _Progress()
        self._body_pace = _Pace(self._limits.stalled_after, self._limits.min_body_rate)

    @override
    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        transport = ChannelTransport(chan, self._peer, self._stats, self._progress.moved)
        self._transport = transport
        self._deadline = asyncio.get_running_loop().call_later(
            self._limits.first_request_timeout, self._no_request_in_time
        )
        protocol = self._bounded(self._protocol_factory())
        if self._tls is not None:
            protocol = tls_server(protocol, self._tls)
        self._guarded(transport.attach, protocol)

    @override
    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._stats.bytes_received += len(data)
        # Progress is what reaches a request's body (_body_received), not bytes on the channel:
        # a chunk's extension, which aiohttp skips, moves bytes and brings the body nothing.
        self._guarded(self._deliver, data)

    @override
    def eof_received(self) -> bool:
        self._guarded(self._required().eof_received)
        return True  # the transport decides, as asyncio's own do

    @override
    def pause_writing(self) -> None:
        self._guarded(self._required().pause_protocol)

    @override
    def resume_writing(self) -> None:
        self._progress.moved()  # the visitor's side took some of the response
        self._guarded(self._required().resume_protocol)

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self._progress.stop()
        self._admission.release()
        transport = self._required()
        transport.closed = True
        self._guarded(transport.lose_connection, exc)

    def _bounded(self, protocol: asyncio.BaseProtocol) -> asyncio.BaseProtocol:
        """`protocol` with its requests bounded; its place can go to a newcomer while it waits.

        With another aiohttp, only the first request's header is watched, byte by byte.
        """
        events = RequestEvents(
            self._request_parsed, self._head_too_large, self._too_much_ahead, self._body_received
        )
        watch = bound_requests(protocol, self._limits, events)
        if watch is None:
            return _RequestHeaderWatch(protocol, self._stop_deadline)
        self._watch = watch
        self._progress.bound(self._limits.stall_timeout, watch.request_under_way, self._stalled)
        self._admission.may_be_evicted(self._may_give_place, self._required().abort)
        return protocol

    def _deliver(self, data: bytes) -> None:
        """Pass `data` on; close the channel if more now waits after an upgrade than is sent ahead.

        aiohttp keeps all a visitor sends after an upgrade request unparsed (requests pipelined
        behind an answer under way are bounded as they are parsed: _too_much_ahead).
        """
        _deliver(self._required().get_protocol(), data)
        if self._watch is not None and self._watch.holds_too_much():
            self._too_much_ahead()

    def _too_much_ahead(self) -> None:
        self._close_now("that sent too much ahead of its answers")

    def _request_parsed(self) -> None:
        """A request's head was parsed: the first-request timer ends, its body's pace begins."""
        self._stop_deadline()
        self._progress.moved()
        self._body_pace.restart()

    def _body_received(self, size: int) -> None:
        """`size` bytes of a request's body reached its payload: the request moves."""
        if size:
            self._progress.moved()
            self._body_pace.received(size)

    def _may_give_place(self) -> bool:
        """Whether a newcomer may take its place: it waits for a request or its request stalled.

        Stalled: no byte moved either way for `stalled_after`, or its body comes slower than
        `min_body_rate` (a byte now and then keeps a request from going quiet).
        """
        watch = self._watch
        stalled_after = self._limits.stalled_after
        return watch is not None and (
            watch.waits_for_request()
            or (
                watch.request_under_way()
                and (
                    self._progress.quiet_for() >= stalled_after
                    or (watch.body_under_way() and self._body_pace.slow_for() >= stalled_after)
                )
            )
        )

    def _head_too_large(self) -> None:
        self._close_now("whose request head (or chunked body's framing) is beyond the bounds")

    def _stalled(self) -> None:
        self._close_now(f"whose request moved no byte for {self._limits.stall_timeout:.0f} s")

    def _close_now(self, why: str) -> None:
        """Close the channel and give its place up at once; aiohttp lets go of it at once.

        The SSH server closes its side only once the visitor has read what it holds for it,
        which a visitor that stopped reading never does: until then the channel counts against
        its visitor's cap (and among the closing channels, which are bounded), not in a place.
        """
        transport = self._required()
        if transport.closed:  # evicted, or gone, meanwhile
            return
        _LOGGER.debug("Closing a tunnelled connection %s", why)
        self._stop_deadline()
        self._progress.stop()
        self._admission.give_place_up()
        transport.abort()

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _no_request_in_time(self) -> None:
        self._close_now("that sent no request in time")

    def _required(self) -> ChannelTransport:
        assert self._transport is not None  # connection_made comes first
        return self._transport

    def _guarded[**P](self, call: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            call(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - it must not reach asyncssh
            _LOGGER.warning("Dropping a tunnelled connection after an error: %r", error)
            if self._transport is not None:
                self._transport.abort()


class _Progress:
    """When a request last moved (a head parsed, body bytes in, answer bytes out); a stall timer.

    The timer is moved on lazily: it fires at most once per timeout while bytes move, instead
    of being set again for every piece.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None

    def moved(self) -> None:
        """The request moved (its head or body came, or its answer was taken on its way)."""
        self._last = self._loop.time()

    def quiet_for(self) -> float:
        """Seconds since a byte last moved."""
        return self._loop.time() - self._last

    def bound(
        self, timeout: float, under_way: Callable[[], bool], stalled: Callable[[], None]
    ) -> None:
        """Call `stalled()` once no byte has moved for `timeout` while `under_way()`."""
        self._timer = self._loop.call_at(
            self._last + timeout, self._check, timeout, under_way, stalled
        )

    def stop(self) -> None:
        """The channel is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(
        self, timeout: float, under_way: Callable[[], bool], stalled: Callable[[], None]
    ) -> None:
        quiet = self.quiet_for()
        if quiet >= timeout and under_way():
            self._timer = None
            stalled()
            return
        # Quiet but waiting, or a websocket: a request that begins moves a byte first.
        delay = timeout - quiet if quiet < timeout else timeout
        self._timer = self._loop.call_later(delay, self._check, timeout, under_way, stalled)


class _Pace:
    """Whether what a visitor sends keeps up with a minimum rate, measured over a window.

    A window fills when `rate` x `window` bytes came within `window` seconds of its start: the
    pace is kept then, and a new window begins. A window that runs out unfilled begins anew
    with the next bytes, so a visitor slower than `rate` never keeps the pace.
    """

    def __init__(self, window: float, rate: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._window = window
        self._enough = rate * window
        self._kept = self._began = self._loop.time()
        self._bytes = 0

    def restart(self) -> None:
        """A new request: its body has a window of its own to keep the pace."""
        self._kept = self._began = self._loop.time()
        self._bytes = 0

    def received(self, size: int) -> None:
        """`size` bytes of the body came from the visitor."""
        now = self._loop.time()
        if now - self._began > self._window:
            self._began, self._bytes = now, 0
        self._bytes += size
        if self._bytes >= self._enough:
            self._kept = self._began = now
            self._bytes = 0

    def slow_for(self) -> float:
        """Seconds since the pace was last kept (or the request began)."""
        return self._loop.time() - self._kept


class _NoProtocolYet(asyncio.Protocol):
    """The transport's protocol until attach(), which connection_made calls at once."""


class _RequestHeaderWatch(asyncio.Protocol):
    """Stands in front of the HTTP protocol and tells when the first request header is complete.

    Only where aiohttp_internals cannot tell when aiohttp has parsed a request.

    In front of the protocol, not the channel, so that it reads what the protocol reads: the
    plain text, with TLS too. After the header it only passes everything on.
    """

    def __init__(self, protocol: asyncio.BaseProtocol, arrived: Callable[[], None]) -> None:
        self._protocol = protocol
        self._arrived: Callable[[], None] | None = arrived
        self._tail = b""  # the end of what came so far: a header end may span two pieces

    @override
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._protocol.connection_made(transport)

    @override
    def data_received(self, data: bytes) -> None:
        if self._arrived is not None:
            if _HEADER_END in self._tail + data[:3] or _HEADER_END in data:
                self._arrived()
                self._arrived = None
            else:
                self._tail = (self._tail + data[-3:])[-3:]
        _deliver(self._protocol, data)

    @override
    def eof_received(self) -> bool:
        return _pass_eof(self._protocol)

    @override
    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    @override
    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)


def _deliver(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Pass data to a plain or a buffered protocol (TLS uses the latter)."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            protocol.buffer_updated(size)
            view = view[size:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


def _pass_eof(protocol: asyncio.BaseProtocol) -> bool:
    """Tell a protocol of the end of input; whether it wants the connection kept open."""
    if isinstance(protocol, asyncio.Protocol | asyncio.BufferedProtocol):
        return bool(protocol.eof_received())
    return False


class ChannelTransport(transports._FlowControlMixin):
    """One SSH channel as an asyncio transport, with the visitor as its peer."""

    _protocol_paused: bool

    def __init__(
        self,
        channel: asyncssh.SSHTCPChannel[bytes],
        peer: tuple[str, int],
        stats: TrafficStats,
        moved: Callable[[], None],
    ) -> None:
        super().__init__(
            extra={"peername": peer, "sockname": ("127.0.0.1", 0), "socket": None},
            loop=asyncio.get_running_loop(),
        )
        self._channel = channel
        self._stats = stats
        self._moved = moved
        self._protocol: asyncio.BaseProtocol = _NoProtocolYet()
        self._reading = True
        self._protocol_told = False
        self.closed = False

    @property
    def _sendfile_compatible(self) -> NoReturn:
        """What loop.sendfile() asks first; the answer is: not here, copy it yourself.

        asyncio's own copy for transports without sendfile moves 16 KiB per executor round
        trip (about 60 MB/s here). NotImplementedError is how aiohttp learns that a loop has
        no sendfile (as on uvloop): its FileResponse then copies in chunks itself (1 MiB on
        the tunnel, see targets.py), several times faster, with the same flow control. The TLS
        transport in front of this one says the same (asyncio_internals.py).
        """
        raise NotImplementedError

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Give the channel to `protocol` and tell it so."""
        self._protocol = protocol
        protocol.connection_made(self)

    def eof_received(self) -> None:
        """The visitor will send no more: close unless the protocol wants to keep writing.

        This is asyncio's rule for its own transports (aiohttp relies on it): a protocol whose
        eof_received returns a false value has the transport closed, after what it has written.
        """
        if not _pass_eof(self._protocol):
            self.close()

    def pause_protocol(self) -> None:
        """The channel's send window is full: the protocol must wait."""
        if not self._protocol_paused:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def resume_protocol(self) -> None:
        """The window opened again."""
        if self._protocol_paused:
            self._protocol_paused = False
            self._protocol.resume_writing()

    # asyncio.Transport

    @override
    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    @override
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    @override
    def is_reading(self) -> bool:
        return self._reading and not self.closed

    @override
    def pause_reading(self) -> None:
        self._reading = False
        self._channel.pause_reading()

    @override
    def resume_reading(self) -> None:
        self._reading = True
        self._channel.resume_reading()

    @override
    def write(self, data: bytes | bytearray | memoryview) -> None:
        # As asyncio's own transports: writing to a closed connection is not an error.
        if self.is_closing() or not data:
            return
        self._stats.bytes_sent += len(data)
        self._moved()  # while the window is full, aiohttp pauses and writes nothing
        self._channel.write(bytes(data))

    @override
    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    @override
    def write_eof(self) -> None:
        if not self.is_closing():
            self._channel.write_eof()

    @override
    def can_write_eof(self) -> bool:
        return True

    @override
    def get_write_buffer_size(self) -> int:
        return int(self._channel.get_write_buffer_size())

    @override
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._channel.set_write_buffer_limits(high, low)

    @override
    def is_closing(self) -> bool:
        return self.closed or self._channel.is_closing()

    @override
    def close(self) -> None:
        self._channel.close()

    @override
    def abort(self) -> None:
        self.closed = True
        self._channel.abort()
        # As asyncio's own transports: the protocol learns of it now, and lets go of what it
        # holds, not once the SSH server closed its side (see ChannelSession._close_now).
        asyncio.get_running_loop().call_soon(self.lose_connection, None)

    def lose_connection(self, exc: Exception | None) -> None:
        """Tell the protocol that the connection is gone; once, however often called."""
        if not self._protocol_told:
            self._protocol_told = True
            self._protocol.connection_lost(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        """What asyncio's SSL protocol calls on a failed handshake (a private transport API)."""
        self.abort()
