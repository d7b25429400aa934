"""What the tunnel's connections are handed to, chosen by the entry's mode."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from homeassistant.core import HomeAssistant

from .addresses import visitor_address
from .aiohttp_internals import with_tunnel_file_responses
from .bridge import in_process_target
from .const import CONF_MODE, CONF_TARGET_HOST, MODE_HOME_ASSISTANT
from .forwarding import SessionFactory
from .limits import ChannelGate

EngineTarget = Callable[[ChannelGate], SessionFactory]

# A file download through the tunnel is copied by aiohttp in chunks of this size, one executor
# round trip each (32 SSH packets). Measured: Home Assistant's CPU per GiB is 23 % lower than
# with aiohttp's 256 KiB (1.70 s against 2.20 s); 2 and 4 MiB were no better.
TUNNEL_FILE_CHUNK = 1024 * 1024


def _http_protocol_factory(hass: HomeAssistant) -> Callable[[], asyncio.BaseProtocol] | None:
    """Aiohttp's server (a protocol factory) once Home Assistant's HTTP server has started."""
    server = hass.http.runner.server if hass.http.runner is not None else None
    return with_tunnel_file_responses(server, TUNNEL_FILE_CHUNK) if server is not None else None


def _webhooks_only_factory(
    hass: HomeAssistant, webhooks_only: Callable[[], asyncio.BaseProtocol]
) -> Callable[[], asyncio.BaseProtocol] | None:
    """The webhooks-only server, from when Home Assistant's own has started.

    As on Home Assistant's own port: a webhook that comes earlier is refused and sent again,
    rather than answered 200 and dropped while its integration is still being set up.
    """
    return webhooks_only if hass.http.runner is not None else None


def _http_ssl_context(hass: HomeAssistant) -> ssl.SSLContext | None:
    """Home Assistant's own TLS settings, when it serves HTTPS itself."""
    return hass.http.context


def engine_target(
    hass: HomeAssistant,
    options: Mapping[str, Any],
    webhooks_only: Callable[[], asyncio.BaseProtocol] | None = None,
) -> EngineTarget | None:
    """In process; None means TCP to the settings' target.

    In process to Home Assistant's HTTP server, or to `webhooks_only` (webhooks_only.py) when
    the entry exposes only webhooks; either way behind Home Assistant's own TLS, if it has one.
    """
    if options[CONF_MODE] != MODE_HOME_ASSISTANT:
        return None
    protocol_factory = (
        partial(_http_protocol_factory, hass)
        if webhooks_only is None
        else partial(_webhooks_only_factory, hass, webhooks_only)
    )
    return partial(
        in_process_target, protocol_factory, visitor_address, partial(_http_ssl_context, hass)
    )


def reaches_home_assistant(options: Mapping[str, Any]) -> bool:
    """Whether the tunnel ends at Home Assistant's HTTP server (so the probe applies).

    Webhooks only ends beside it, at an application that answers the probe as well.
    """
    return options[CONF_MODE] == MODE_HOME_ASSISTANT or not options[CONF_TARGET_HOST]
