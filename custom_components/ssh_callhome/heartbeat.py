"""The heartbeat: a URL requested now and then while home is reachable through the tunnel.

A healthchecks-style service (or an ntfy or Uptime Kuma push monitor) expects it; when Home
Assistant, its network or the tunnel is gone, the requests stop and that service alerts the user,
the one alert Home Assistant cannot send about itself. It runs while the tunnel is up and its
check does not fail, and never touches the tunnel: a failed request is only logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import aiohttp
from yarl import URL

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval

from .engine import ResponseHeadersTooLarge, Status, Tunnel, TunnelState
from .http_client import async_bounded_session

_LOGGER = logging.getLogger(__name__)
# A heartbeat that has not been answered by then has failed; never longer than the interval.
_TIMEOUT = timedelta(seconds=10)
# What raise_for_status lets through that is no answer from the service itself.
_REDIRECTS = range(300, 400)


def is_heartbeat_url(text: str) -> bool:
    """Whether `text` is an http(s) URL with a host, as the options accept it."""
    try:
        url = URL(text)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host) and url.is_absolute()


def _alive(state: TunnelState, checked: bool) -> bool:
    """Up, and the check (where there is one) has found the way in and not found it broken."""
    if state.status is not Status.CONNECTED or state.failed_check is not None:
        return False
    return state.reachability is not None or not checked


class Redirected(aiohttp.ClientError):
    """The heartbeat's URL answered with a redirect, which is not followed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"redirected (HTTP {status}), not followed")


class Heartbeat:
    """A listener of the engine: beats at once when home becomes reachable, then every interval.

    The URL may hold the service's secret (a check's id, a topic): logs name its host only.
    A redirect is not followed: it could send the request to any host and port, into the home
    network too, and a heartbeat service answers its own URL directly. It counts as a failure.
    """

    def __init__(self, hass: HomeAssistant, tunnel: Tunnel, url: str, interval: timedelta) -> None:
        self._hass = hass
        self._url = url
        self._interval = interval
        self._timeout = aiohttp.ClientTimeout(total=min(_TIMEOUT, interval).total_seconds())
        # Whether the tunnel has a check whose first result is to be waited for.
        self._checked = tunnel.settings.probe is not None
        self._stop_timer: CALLBACK_TYPE | None = None
        self._failing = False

    @callback
    def __call__(self, state: TunnelState) -> None:
        """Start beating when home becomes reachable, stop when it no longer is."""
        alive = _alive(state, self._checked)
        if alive and self._stop_timer is None:
            self._stop_timer = async_track_time_interval(
                self._hass, self._async_beat, self._interval, name="ssh_callhome heartbeat"
            )
            self._hass.async_create_background_task(self._async_beat(), "ssh_callhome heartbeat")
        elif not alive:
            self.async_stop()

    @callback
    def async_stop(self) -> None:
        """No more beats (until home is reachable again)."""
        if self._stop_timer is not None:
            self._stop_timer()
            self._stop_timer = None

    async def _async_beat(self, _now: datetime | None = None) -> None:
        """One request; a run of failures is logged once, at its start, and its end at info."""
        session = async_bounded_session(self._hass)
        host = URL(self._url).host
        try:
            async with session.get(
                self._url, timeout=self._timeout, allow_redirects=False
            ) as response:
                response.raise_for_status()
                if response.status in _REDIRECTS:
                    raise Redirected(response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            if not self._failing:
                _LOGGER.warning("Heartbeat to %s failed: %s", host, _describe(error))
            self._failing = True
            return
        if self._failing:
            _LOGGER.info("Heartbeat to %s works again", host)
        self._failing = False


def _describe(error: Exception) -> str:
    """The failure without the URL, which aiohttp's messages quote (it may hold a secret)."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status}"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, (Redirected, ResponseHeadersTooLarge)):  # neither names the URL
        return str(error)
    if isinstance(error, aiohttp.ClientConnectorError):  # names the host and port only
        return str(error)
    return type(error).__name__
