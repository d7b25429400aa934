"""The HTTP session the public URL's check and the heartbeat go out through.

Home Assistant's shared connection pool (its connector), in a session of the integration's own
that bounds the response headers it reads (aiohttp_client_internals.py). One for all entries,
closed by Home Assistant when it stops.
"""

from __future__ import annotations

import aiohttp

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.util.hass_dict import HassKey

from .engine import bounded_session_arguments

_SESSION: HassKey[aiohttp.ClientSession] = HassKey("ssh_callhome_http_session")


def async_bounded_session(hass: HomeAssistant) -> aiohttp.ClientSession:
    """The session, made on first use (in the event loop, as Home Assistant requires)."""
    session = hass.data.get(_SESSION)
    if session is None or session.closed:
        session = async_create_clientsession(hass, **bounded_session_arguments())
        hass.data[_SESSION] = session
    return session
