"""The tunnel engine: connect, forward, keep alive, reconnect. Knows nothing of Home Assistant."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncssh

from .backoff import Backoff
from .channels import TrafficStats
from .connection import (
    HostKeyChanged,
    disable_server_nagle,
    negotiated_kex,
    open_connection,
    request_forward,
    round_trip_ms,
)
from .extras import take_extra_forwards
from .healing import SelfHealing, Verdict
from .keys import export_host_key
from .limits import ChannelGate
from .probe import PROBE_ORIGINATOR, ProbeResult, ProbeSpec, probe_public_path
from .public_url import PublicUrlResult, check_public_url
from .server_text import printable
from .session_target import SessionTarget
from .settings import TunnelSettings
from .state import CHECK_FAILURES, Status, TunnelState, describe, reason_for
from .visitors import VisitorRecord

_LOGGER = logging.getLogger(__name__)

# How long stopping may wait for the server to acknowledge the close.
_CLOSE_TIMEOUT = 1.0
# State changes kept for diagnostics.
HISTORY_LENGTH = 20
# Seconds between round-trip measurements (probes follow their own, longer interval).
WATCH_INTERVAL = 30.0

Listener = Callable[[TunnelState], None]


class ClosedByServer(ConnectionError):
    """The connection ended without an error: the server (or a reconnect request) closed it."""

    def __init__(self) -> None:
        super().__init__("the connection was closed")


class Tunnel:
    """Keeps one reverse forward up until cancelled, and reports every change of state."""

    def __init__(self, settings: TunnelSettings, target: SessionTarget) -> None:
        self.settings = settings
        self.stats = TrafficStats()
        # One gate for every forward of the tunnel: the caps are for all of them together.
        self._gate = ChannelGate(settings.limits, self.stats)
        # What each forwarded connection is handed to.
        self._sessions = target(self._gate)
        self._state = TunnelState(Status.DISCONNECTED, datetime.now(UTC))
        self.history: deque[TunnelState] = deque([self._state], maxlen=HISTORY_LENGTH)
        self._listeners: list[Listener] = []
        self._backoff = Backoff(settings.backoff)
        self._wake = asyncio.Event()
        self._connection: asyncssh.SSHClientConnection | None = None
        self._reconnect_requested = False
        self._ever_connected = False
        self._healing = SelfHealing(settings.self_heal)
        # Set by the first failure after the tunnel was up (or at start); cleared when it is up.
        self._outage_started: datetime | None = None

    @property
    def state(self) -> TunnelState:
        """The current state."""
        return self._state

    @property
    def visitors(self) -> VisitorRecord:
        """Recent originators and refused visitors, and who hears of the refusals."""
        return self._gate.visitors

    @property
    def caps_full(self) -> bool:
        """Whether every place the total cap allows is taken: new visitors are refused."""
        return self.stats.active_connections >= self.settings.limits.total

    def connection_details(self) -> dict[str, str]:
        """What the live connection negotiated, for diagnostics; empty when there is none."""
        if self._connection is None:
            return {}
        # The server chose its version banner: it is escaped and capped like any server text.
        details = {
            name: printable(str(self._connection.get_extra_info(name)))
            for name in ("server_version", "send_cipher", "recv_cipher", "send_mac")
        }
        details["kex"] = negotiated_kex(self._connection)
        return details

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every change; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def request_reconnect(self) -> None:
        """Drop the connection (if any) and try again at once, with the backoff reset."""
        self._backoff.reset()
        if self._connection is not None:
            # Its end is then no failure, and no backoff delay follows it.
            self._reconnect_requested = True
            self._connection.close()
        # Cuts a backoff pause short; an attempt under way is already the "at once".
        self._wake.set()

    async def run(self) -> None:
        """Keep the tunnel up until the task running this is cancelled."""
        self._update(replace(self._state, running=True))
        try:
            while True:
                await self._run_once()
                if self._reconnect_requested:
                    self._reconnect_requested = False
                    continue
                await self._pause(self._backoff.next_delay())
        finally:
            await self._close_connection()
            self.visitors.end_interval()  # a summary of refused visitors is not left pending
            self._update(replace(self._state, running=False, status=Status.DISCONNECTED))

    async def _run_once(self) -> None:
        """One connection's life; every failure ends here and is recorded."""
        try:
            await self._session()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a reason, none escapes
            if not self._reconnect_requested:
                self._record_failure(error)

    async def _session(self) -> None:
        """Connect, take the forward, and wait until the connection ends."""
        self._update(replace(self._state.without_connection(), status=Status.CONNECTING))
        lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        def on_lost(error: Exception | None) -> None:
            if not lost.done():
                lost.set_result(error)
            self._wake.set()

        self._connection = await open_connection(self.settings, on_lost)
        connected_at = time.monotonic()
        watch: asyncio.Task[None] | None = None
        try:
            await disable_server_nagle(self._connection)
            await self._forward(self._connection, lost)
            self._record_connected()
            watch = asyncio.create_task(self._watch(self._connection), name="ssh_callhome watch")
            error = await lost
        finally:
            if watch is not None:
                watch.cancel()
                await asyncio.wait({watch})
            await self._close_connection()
        if time.monotonic() - connected_at >= self.settings.backoff.stable_after:
            self._backoff.reset()
        raise error or ClosedByServer()

    async def _forward(
        self,
        connection: asyncssh.SSHClientConnection,
        lost: asyncio.Future[Exception | None],
    ) -> None:
        """Take the remote port, retrying a refusal on the same live connection."""
        while True:
            try:
                await request_forward(connection, self.settings, self._sessions)
            except asyncssh.ChannelListenError as error:
                # Often the server's previous session still holds the port until it times out.
                self._record_failure(error)
            else:
                return
            await self._pause(self._backoff.next_delay())
            # A reconnect request closes the connection: the next request fails and ends this.
            if lost.done():
                raise lost.result() or ClosedByServer()
            self._update(replace(self._state, status=Status.CONNECTING))

    async def _watch(self, connection: asyncssh.SSHClientConnection) -> None:
        """While connected: extra forwards, round-trip time, and now and then the check.

        Each pass asks for the extra forwards not held yet: at once after connecting, then
        again for the ones the server refused. A run of failed passes is logged once, at its
        start, and its end once at info.
        """
        self._healing.new_connection()
        next_check = 0.0
        failing = False
        while True:
            try:
                await self._take_extra_forwards(connection)
                self.stats.round_trip_ms = await round_trip_ms(connection)
                probe = self.settings.probe
                if probe is not None and time.monotonic() >= next_check:
                    next_check = time.monotonic() + probe.interval
                    await self._check_reachability(connection, probe)
                    self._heal()
            except Exception as error:  # noqa: BLE001 - a failed measurement must not end the tunnel
                log = _LOGGER.debug if failing else _LOGGER.warning
                log("Measuring tunnel %s failed: %s", self._name, describe(error))
                failing = True
            else:
                if failing:
                    _LOGGER.info("Measuring tunnel %s works again", self._name)
                failing = False
            await asyncio.sleep(self._watch_interval)

    @property
    def _watch_interval(self) -> float:
        """Seconds between passes: a check more often than round trips are measured sets them."""
        probe = self.settings.probe
        return WATCH_INTERVAL if probe is None else min(WATCH_INTERVAL, probe.interval)

    def _heal(self) -> None:
        """Reconnect when the check keeps failing, unless the last such reconnect was lately."""
        failure = self._state.failed_check
        verdict = self._healing.after_check(failure is not None)
        if verdict is Verdict.RECONNECT:
            _LOGGER.warning(
                "Tunnel %s is connected but its check failed %d times in a row (%s): reconnecting",
                self._name,
                self.settings.self_heal.after_failures,
                failure,
            )
            self._update(
                replace(
                    self._state, self_heals=self._state.self_heals + 1, self_heal_reason=failure
                )
            )
            self.request_reconnect()
        elif verdict is Verdict.HELD_BACK and not self._state.self_heal_held_back:
            _LOGGER.warning(
                "Tunnel %s: its check keeps failing (%s) after a reconnect; no other reconnect "
                "within %d minutes of the last",
                self._name,
                failure,
                round(self.settings.self_heal.min_gap / 60),
            )
            self._update(replace(self._state, self_heal_held_back=True))
        elif self._state.self_heal_held_back and self._state.check_passed:
            _LOGGER.info("Tunnel %s: its check passes again", self._name)
            self._update(replace(self._state, self_heal_held_back=False))

    async def _probe(
        self, connection: asyncssh.SSHClientConnection, probe: ProbeSpec
    ) -> ProbeResult:
        """The public-path probe, unless the visitor policy would refuse it at the gate.

        It has a place beyond the caps while it runs (limits.py); when a visitor from its own
        address took that place first, its refusal is the caps' verdict, not the path's.
        """
        if self.settings.limits.visitors.refusal(PROBE_ORIGINATOR) is not None:
            return ProbeResult.NOT_ALLOWED
        settings = self.settings
        with self.visitors.own_check(PROBE_ORIGINATOR) as check:
            result = await probe_public_path(
                connection, settings.probe_host, settings.remote_port, probe
            )
        if result in CHECK_FAILURES and check.refused_for_capacity:
            # The caps refused a connection from the check's address meanwhile: its place may
            # have gone to a visitor from there, and the check been refused like a visitor. A
            # reconnect would not help (it drops every visitor): no verdict. Refusals of other
            # visitors leave a failure the path's.
            return ProbeResult.CAPS_FULL
        return result

    async def _check_reachability(
        self, connection: asyncssh.SSHClientConnection, probe: ProbeSpec
    ) -> None:
        """The direct probe and, with a public URL, the outside-in check: at once, one update."""
        direct = self._probe(connection, probe)
        public_url = self.settings.public_url
        if public_url is None:
            self._update(replace(self._state, reachability=await direct))
            return
        async with asyncio.TaskGroup() as checks:
            reachability = checks.create_task(direct)
            public_url_result = checks.create_task(check_public_url(public_url, probe))
        self._log_public_url_change(public_url.url, public_url_result.result())
        self._update(
            replace(
                self._state,
                reachability=reachability.result(),
                public_url_result=public_url_result.result(),
            )
        )

    def _log_public_url_change(self, url: str, result: PublicUrlResult) -> None:
        """A warning when the public URL stops answering (or fails otherwise), info when back."""
        previous = self._state.public_url_result
        if result is previous:
            return
        if result is not PublicUrlResult.REACHABLE:
            _LOGGER.warning("Public URL %s of tunnel %s fails: %s", url, self._name, result)
        elif previous is not None:
            _LOGGER.info("Public URL %s of tunnel %s answers again", url, self._name)

    async def _take_extra_forwards(self, connection: asyncssh.SSHClientConnection) -> None:
        """Ask for the extra forwards the server does not hold yet (refused ones are retried)."""
        held = self._state.extra_forwards_up
        wanted = [f for f in self.settings.extra_forwards if f.remote_port not in held]
        if wanted:
            taken = await take_extra_forwards(
                connection, self.settings.bind_address, wanted, self._gate
            )
            self._update(replace(self._state, extra_forwards_up=held | taken))

    async def _pause(self, delay: float) -> None:
        """Sleep `delay` seconds, or less when a reconnect is requested or the connection ends."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await connection.wait_closed()

    def _record_connected(self) -> None:
        if self._ever_connected and self._outage_started is not None:
            outage = datetime.now(UTC) - self._outage_started
            _LOGGER.info("Tunnel %s is up again after %s", self._name, _rounded(outage))
        else:
            _LOGGER.info("Tunnel %s is up", self._name)
        self._update(
            replace(
                self._state,
                status=Status.CONNECTED,
                reconnects=self._state.reconnects + int(self._ever_connected),
                presented_host_key=None,
            )
        )
        self._ever_connected = True
        self._outage_started = None

    def _record_failure(self, error: BaseException) -> None:
        """Log an outage once when it starts (and each new host key); retries at debug only."""
        reason = reason_for(error)
        presented = export_host_key(error.presented) if isinstance(error, HostKeyChanged) else None
        new_host_key = presented is not None and presented != self._state.presented_host_key
        if self._outage_started is None or new_host_key:
            self._outage_started = self._outage_started or datetime.now(UTC)
            _LOGGER.warning("Tunnel %s is down (%s): %s", self._name, reason, describe(error))
        else:
            _LOGGER.debug("Tunnel %s still down (%s): %s", self._name, reason, describe(error))
        self.stats.round_trip_ms = None
        self._update(
            replace(
                self._state.without_connection(),
                status=Status.DISCONNECTED,
                last_error=reason,
                presented_host_key=presented,
            )
        )

    @property
    def _name(self) -> str:
        settings = self.settings
        return f"{settings.server_name} (remote port {settings.remote_port})"

    def _update(self, new: TunnelState) -> None:
        """Make `new` (the current state with some fields replaced) the state, and tell."""
        if new.status is not self._state.status:
            # A status change starts a new "since"; a status that stays keeps its start.
            new = replace(new, since=datetime.now(UTC))
        if new != self._state:
            if (new.status, new.last_error) != (self._state.status, self._state.last_error):
                self.history.append(new)
            self._state = new
            self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self._state)


def _rounded(duration: timedelta) -> timedelta:
    return timedelta(seconds=round(duration.total_seconds()))
