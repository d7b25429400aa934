"""Webhooks only: what the tunnel reaches when the rest of Home Assistant stays off the internet.

An aiohttp application of the integration's own, beside Home Assistant's HTTP server and not in
it. Its router knows two paths: `/api/webhook/{webhook_id}`, handled by the webhook component's
own handler, and the public-path probe's (probe_view.py), so that the check still tells whether
the server's port reaches this Home Assistant. aiohttp answers 404 to every other path. None of
Home Assistant's middlewares that decide who a visitor is (forwarded headers, bans, auth) runs,
and no request reaches the frontend, the login flow, the REST API or the websocket.

The bridge gives each request the visitor's address as its remote (bridge.py, addresses.py),
which is never local: a webhook registered `local_only` refuses every tunnelled visitor.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from homeassistant.components.http import (
    MAX_CLIENT_SIZE,
    MAX_LINE_SIZE,
    HomeAssistantApplication,
)
from homeassistant.components.http.headers import setup_headers
from homeassistant.components.http.request_context import setup_request_context
from homeassistant.components.webhook import (
    SUPPORTED_METHODS,
    URL_WEBHOOK_PATH,
    async_handle_webhook,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers.http import KEY_HASS, current_request
from homeassistant.util.hass_dict import HassKey

from .engine import SessionTarget
from .probe_view import PROBE_URL, answer_probe
from .targets import in_process_to

# As Home Assistant's own server: how long a stop waits for requests in progress.
_SHUTDOWN_TIMEOUT = 10.0
_SERVER: HassKey[web.Server] = HassKey("ssh_callhome_webhooks_only")


async def async_setup_webhooks_only(hass: HomeAssistant) -> None:
    """Once, from async_setup: the application, ready for any entry that exposes webhooks only.

    One for all entries, built whether used or not (it holds no socket): entries and the config
    flow's check can then take their target without a setup and cleanup of their own.
    """
    runner = web.AppRunner(
        _application(hass), handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    assert runner.server is not None  # setup() made it
    hass.data[_SERVER] = runner.server

    async def stop(_event: Event) -> None:
        await runner.cleanup()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, stop)


def webhooks_only_target(hass: HomeAssistant) -> SessionTarget:
    """Each connection to the application, from when Home Assistant's own server has started.

    As on Home Assistant's own port: a webhook that comes earlier is refused (to be sent again)
    rather than answered 200 and dropped while its integration is still being set up.
    """
    return in_process_to(hass, partial(_server_once_http_started, hass))


def _server_once_http_started(hass: HomeAssistant) -> web.Server | None:
    return hass.data[_SERVER] if hass.http.runner is not None else None


def _application(hass: HomeAssistant) -> web.Application:
    # Home Assistant's request class and size limits, so webhook handlers get what they would get.
    app = HomeAssistantApplication(
        client_max_size=MAX_CLIENT_SIZE,
        handler_args={"max_line_size": MAX_LINE_SIZE, "max_field_size": MAX_LINE_SIZE},
    )
    app[KEY_HASS] = hass
    # The two of Home Assistant's middlewares that judge nobody: handlers may look up the
    # current request, and responses (404s too) carry its security headers and no Server.
    setup_request_context(app, current_request)
    setup_headers(app, use_x_frame_options=True)
    for method in SUPPORTED_METHODS:
        app.router.add_route(method, URL_WEBHOOK_PATH, _handle_webhook)
    app.router.add_get(PROBE_URL, answer_probe, allow_head=False)
    return app


async def _handle_webhook(request: web.Request) -> web.Response:
    """What Home Assistant's own webhook view does, the `local_only` rule included."""
    hass = request.app[KEY_HASS]
    return await async_handle_webhook(hass, request.match_info["webhook_id"], request)
