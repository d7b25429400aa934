"""Where Home Assistant answers the public-path probe: a random path with a random answer.

The view is public (the probe comes in like any visitor), so it gives nothing away: unknown
paths get 404, and each running tunnel has its own path and answer, made anew at every start.
When Home Assistant serves HTTPS itself, the probe also expects the certificate it serves.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util.hass_dict import HassKey

from .engine import ProbeSpec, served_certificate

PROBE_URL = "/api/ssh_callhome/probe/{token}"
_ANSWERS: HassKey[dict[str, bytes]] = HassKey("ssh_callhome_probe_answers")


class ProbeView(HomeAssistantView):
    """Answers the probe of a running tunnel."""

    url = PROBE_URL
    name = "api:ssh_callhome:probe"
    requires_auth = False

    async def get(self, request: web.Request, token: str) -> web.Response:
        """The tunnel's answer, or 404 for any path no tunnel made."""
        return _answer(request, token)


async def answer_probe(request: web.Request) -> web.Response:
    """The same answer from a plain aiohttp route on PROBE_URL (Webhooks only)."""
    return _answer(request, request.match_info["token"])


def _answer(request: web.Request, token: str) -> web.Response:
    answer = request.app[KEY_HASS].data.get(_ANSWERS, {}).get(token)
    if answer is None:
        raise web.HTTPNotFound
    return web.Response(body=answer, content_type="text/plain")


@callback
def async_register_probe_view(hass: HomeAssistant) -> None:
    """Once, from async_setup."""
    hass.data.setdefault(_ANSWERS, {})
    hass.http.register_view(ProbeView())


async def async_new_probe(hass: HomeAssistant, interval: float) -> tuple[ProbeSpec, str]:
    """A path and answer for one engine run; returns the spec and the token to forget later."""
    context = hass.http.context
    certificate = None
    if context is not None:  # a handshake costs milliseconds of CPU: not on the event loop
        certificate = await hass.async_add_executor_job(served_certificate, context)
    token = secrets.token_urlsafe(16)
    answer = secrets.token_urlsafe(16).encode()
    hass.data[_ANSWERS][token] = answer
    path = PROBE_URL.format(token=token)
    spec = ProbeSpec(path=path, answer=answer, interval=interval, certificate=certificate)
    return spec, token


@callback
def async_forget_probe(hass: HomeAssistant, token: str) -> None:
    """The run ended: its path answers 404 from now on."""
    hass.data[_ANSWERS].pop(token, None)
