"""What the benchmark asks of the Home Assistant it measures, and nothing else.

An upload sink (a view that reads a request body to its end) and the event loop's lateness: a
timer every few milliseconds records how late it ran. Only the benchmark's throwaway instance
loads this; both views answer without a login, on loopback.
"""

from __future__ import annotations

import asyncio
import statistics

from aiohttp import web

from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.typing import ConfigType

DOMAIN = "bench_probe"
TICK_SECONDS = 0.005
READ_CHUNK = 1024 * 1024


class LoopLag:
    """How late a periodic timer runs on the event loop, in ms, since the last reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._late_ms: list[float] = []
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Schedule the first tick."""
        self._schedule(self._loop.time() + TICK_SECONDS)

    def stop(self) -> None:
        """No more ticks."""
        if self._handle is not None:
            self._handle.cancel()

    def take(self) -> dict[str, float]:
        """p50, p99 and max since the last call, then start afresh."""
        late, self._late_ms = sorted(self._late_ms), []
        if not late:
            return {"samples": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
        return {
            "samples": len(late),
            "p50": statistics.median(late),
            "p99": late[int(len(late) * 0.99)],
            "max": late[-1],
        }

    def _schedule(self, when: float) -> None:
        self._handle = self._loop.call_at(when, self._tick, when)

    def _tick(self, due: float) -> None:
        now = self._loop.time()
        self._late_ms.append((now - due) * 1000)
        self._schedule(now + TICK_SECONDS)


class LagView(HomeAssistantView):
    """GET: the loop's lateness since the previous GET."""

    url = "/api/bench_probe/lag"
    name = "api:bench_probe:lag"
    requires_auth = False

    def __init__(self, lag: LoopLag) -> None:
        self._lag = lag

    async def get(self, _request: web.Request) -> web.Response:
        """The figures, as JSON."""
        return self.json(self._lag.take())


class SinkView(HomeAssistantView):
    """POST: read the whole body, answer with its size."""

    url = "/api/bench_probe/sink"
    name = "api:bench_probe:sink"
    requires_auth = False

    async def post(self, request: web.Request) -> web.Response:
        """Count the bytes as they arrive; nothing is kept."""
        size = 0
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            size += len(chunk)
        return self.json({"bytes": size})


async def async_setup(hass: HomeAssistant, _config: ConfigType) -> bool:
    """Register both views and start the timer until Home Assistant stops."""
    lag = LoopLag(hass.loop)
    lag.start()
    hass.bus.async_listen_once("homeassistant_stop", lambda _event: lag.stop())
    hass.http.register_view(LagView(lag))
    hass.http.register_view(SinkView())
    return True
