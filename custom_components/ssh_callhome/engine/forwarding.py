"""Carrying each forwarded SSH channel to its target, counting connections and bytes.

asyncssh's own forward_remote_port does the carrying too, but tells nothing about it; this is
the same pipe (with flow control both ways) plus the counters the sensors show.
"""

from __future__ import annotations

import asyncio
import logging

import asyncssh

from .channels import SessionFactory, TrafficStats
from .limits import Admission, ChannelGate, ConnectionLimits
from .proxy_header import proxy_v2_header

_LOGGER = logging.getLogger(__name__)


def tcp_target(
    host: str,
    port: int,
    gate: ChannelGate,
    *,
    proxy_header: bool = False,
    extra_forward: bool = False,
) -> SessionFactory:
    """Sessions that connect each channel to host:port; a refused target refuses the channel.

    An `extra_forward`'s channels ask the gate for a place within the extra forwards' share.

    With `proxy_header`, the target gets a PROXY protocol v2 header (proxy_header.py) naming
    the visitor before any of the visitor's bytes.

    The target may speak first, so a visitor is not asked for a request, only for its first
    bytes within the first-request timeout. There is no idle timeout: an SSH shell or an MQTT
    client may rightly say nothing for hours. A stall is different: a target that takes none
    of the visitor's bytes for the stall timeout has stopped reading, and the channel is closed.
    Without that, a visitor that leaves meanwhile would hold its place for good, since the SSH
    server waits for window to hand over what it buffered before it tells us.
    """

    async def open_session(orig_host: str, orig_port: int) -> asyncssh.SSHTCPSession[bytes]:
        admission = gate.admit(orig_host, extra_forward=extra_forward)
        loop = asyncio.get_running_loop()
        channel_side = _ChannelSide(gate.stats, admission, gate.limits, proxy_header)
        try:
            await loop.create_connection(lambda: _TargetSide(channel_side), host, port)
        except OSError as error:
            admission.release()
            _LOGGER.debug("Target %s:%d refused a connection: %s", host, port, error)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, "target refused the connection"
            ) from None
        # asyncssh opens the channel right after this returns, or drops it unopened when the
        # SSH connection ended meanwhile: then the target connection and the place must go.
        loop.call_soon(channel_side.drop_if_unopened)
        return channel_side

    return open_session


class _ChannelSide(asyncssh.SSHTCPSession[bytes]):
    """The SSH channel's end of the pipe.

    Its target is connected before asyncssh opens the channel, and the target is paused until
    the channel exists: so both ends are set before either calls the other.
    """

    _channel: asyncssh.SSHTCPChannel[bytes]
    target: asyncio.Transport

    def __init__(
        self,
        stats: TrafficStats,
        admission: Admission,
        limits: ConnectionLimits,
        proxy_header: bool,
    ) -> None:
        self._stats = stats
        self._admission = admission
        self._limits = limits
        self._proxy_header = proxy_header
        # Runs while the visitor has sent nothing yet, or while the target takes nothing.
        self._deadline: asyncio.TimerHandle | None = None
        self._opened = False
        self._closed = False

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self._channel = chan
        self._opened = True
        if self._proxy_header:
            # The visitor's bytes arrive only after this returns, so the header goes first.
            self.target.write(_proxy_header_of(chan))
        self._arm(self._limits.first_request_timeout, "the visitor sent nothing")
        # Held back until now: a target that speaks first must not speak into the void.
        self.target.resume_reading()

    def drop_if_unopened(self) -> None:
        """Free the place and the target if asyncssh gave up on the channel before opening it."""
        if not self._opened:
            self._admission.release()
            self.target.close()

    def _arm(self, delay: float, why: str) -> None:
        self._disarm()
        self._deadline = asyncio.get_running_loop().call_later(delay, self._expire, why)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, why: str) -> None:
        _LOGGER.debug("Closing a tunnelled connection: %s", why)
        self._channel.abort()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._disarm()  # before the write, which may pause the channel and arm the stall
        self._stats.bytes_received += len(data)
        self.target.write(data)

    def eof_received(self) -> bool:
        if self.target.can_write_eof():
            self.target.write_eof()
        return True  # the other direction may still carry the answer

    def pause_writing(self) -> None:
        self.target.pause_reading()

    def resume_writing(self) -> None:
        self.target.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._disarm()
        self._admission.release()
        self.target.close()

    # Called by the target's end; after the channel is gone there is nobody to tell.

    def write(self, data: bytes) -> None:
        if not self._closed:
            self._stats.bytes_sent += len(data)
            self._channel.write(data)

    def write_eof(self) -> None:
        if not self._closed:
            self._channel.write_eof()

    def close(self) -> None:
        if self._opened:  # a target closing before the channel opened has nobody to tell
            self._channel.close()

    def pause_reading(self) -> None:
        self._channel.pause_reading()
        self._arm(self._limits.stall_timeout, "the target stopped reading")

    def resume_reading(self) -> None:
        self._disarm()
        self._channel.resume_reading()


def _proxy_header_of(chan: asyncssh.SSHTCPChannel[bytes]) -> bytes:
    """From the visitor, as the server reports it, to the address the server listens on.

    asyncssh sets both for every forwarded channel (SSHTCPChannel.set_inbound_peer_names).
    """
    visitor: tuple[str, int] = chan.get_extra_info("remote_peername")
    listen_address: tuple[str, int] = chan.get_extra_info("local_peername")
    return proxy_v2_header(visitor, listen_address)


class _TargetSide(asyncio.Protocol):
    """The target connection's end of the pipe."""

    def __init__(self, channel_side: _ChannelSide) -> None:
        self._channel_side = channel_side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # until the channel is open
        self._channel_side.target = transport

    def data_received(self, data: bytes) -> None:
        self._channel_side.write(data)

    def eof_received(self) -> bool:
        self._channel_side.write_eof()
        return True

    def pause_writing(self) -> None:
        self._channel_side.pause_reading()

    def resume_writing(self) -> None:
        self._channel_side.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel_side.close()
