"""The tunnel's observable state, and how failures map to reasons; no Home Assistant imports."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import asyncssh

from .probe import ProbeResult
from .public_url import PublicUrlResult
from .server_text import printable


class Status(StrEnum):
    """Where the tunnel is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class Reason(StrEnum):
    """Why the tunnel is not (or was last not) up."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    AUTH = "auth"
    HOST_KEY = "host_key"
    FORWARD_REFUSED = "forward_refused"
    CONNECTION_LOST = "connection_lost"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TunnelState:
    """A snapshot handed to listeners on every change."""

    status: Status
    since: datetime
    last_error: Reason | None = None
    reconnects: int = 0
    # False once the engine has stopped (or before it starts): the state is then not current.
    running: bool = False
    # With last_error host_key: the key the server presented instead of the pinned one.
    presented_host_key: str | None = None
    # What the last public-path probe of this connection found; None before the first.
    reachability: ProbeResult | None = None
    # What the last request to the public URL found (checked with the probe, when one is set);
    # None before the first, or without a public URL.
    public_url_result: PublicUrlResult | None = None
    # The remote ports of the extra forwards the server holds for us now.
    extra_forwards_up: frozenset[int] = frozenset()
    # Reconnects made because the check kept failing, and the failure behind the last one.
    self_heals: int = 0
    self_heal_reason: str | None = None
    # The check keeps failing and the last such reconnect is too recent for another: a reconnect
    # does not fix this one. Cleared when the check passes.
    self_heal_held_back: bool = False

    def without_connection(self) -> TunnelState:
        """The state with what only one connection has cleared: its checks and extra forwards."""
        return replace(
            self, reachability=None, public_url_result=None, extra_forwards_up=frozenset()
        )

    @property
    def failed_check(self) -> str | None:
        """Why the last check of this connection failed; None if it passed or gave no verdict.

        The one place that says whether the check failed: self-healing counts what it says and
        the heartbeat waits on it. The direct check's failure comes first; with a public URL set,
        its failure counts too, prefixed (`public_url_timeout`).
        """
        reachability = self.reachability
        if reachability is not None and reachability in CHECK_FAILURES:
            return reachability.value
        public_url = self.public_url_result
        if public_url is not None and public_url is not PublicUrlResult.REACHABLE:
            return f"{PUBLIC_URL_FAILURE_PREFIX}{public_url.value}"
        return None

    @property
    def check_passed(self) -> bool:
        """Whether the last check of this connection found the way in working."""
        reached = PublicUrlResult.REACHABLE in (self.reachability, self.public_url_result)
        return reached and self.failed_check is None


# What a check finds that means the way in is broken; FORBIDDEN gives no verdict.
CHECK_FAILURES = frozenset({ProbeResult.UNREACHABLE, ProbeResult.WRONG_ANSWER})
# How a failure of the public URL's check is told from the direct check's.
PUBLIC_URL_FAILURE_PREFIX = "public_url_"


# Order matters: the specific OSError subclasses come before OSError itself.
_REASON_BY_TYPE: tuple[tuple[type[BaseException], Reason], ...] = (
    (socket.gaierror, Reason.DNS),
    (ConnectionRefusedError, Reason.REFUSED),
    (asyncio.TimeoutError, Reason.TIMEOUT),
    (asyncssh.PermissionDenied, Reason.AUTH),
    (asyncssh.HostKeyNotVerifiable, Reason.HOST_KEY),
    (asyncssh.ChannelListenError, Reason.FORWARD_REFUSED),
    (asyncssh.ConnectionLost, Reason.CONNECTION_LOST),
    (asyncssh.DisconnectError, Reason.CONNECTION_LOST),
    (OSError, Reason.CONNECTION_LOST),
)


def reason_for(error: BaseException | None) -> Reason:
    """Map an exception raised by asyncssh or the socket layer to a reason."""
    if error is None:
        return Reason.CONNECTION_LOST
    for error_type, reason in _REASON_BY_TYPE:
        if isinstance(error, error_type):
            return reason
    return Reason.UNKNOWN


def describe(error: BaseException | None) -> str:
    """A one-line description of a failure for the log, never with a traceback.

    The message may quote the server (a disconnect reason, a channel's failure): it is escaped
    and capped like everything the server chooses.
    """
    if error is None:
        return "closed by the server"
    text = str(error).strip()
    return printable(f"{type(error).__name__}: {text}" if text else type(error).__name__)
