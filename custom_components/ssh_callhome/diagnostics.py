"""Config-entry diagnostics: the engine's state and recent history, with every secret redacted."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_HOST, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import (
    CONF_ALLOWED_NETWORKS,
    CONF_EXTRA_FORWARDS,
    CONF_HEARTBEAT_URL,
    CONF_HOST_KEY,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_PUBLIC_URL,
    CONF_REFUSED_NETWORKS,
    CONF_TARGET_HOST,
)
from .engine import ExtraForward, TunnelState, VisitorRefusal
from .runtime_data import SshCallhomeConfigEntry

TO_REDACT = {
    CONF_PRIVATE_KEY,
    CONF_PASSPHRASE,
    CONF_HOST,
    CONF_USERNAME,
    CONF_HOST_KEY,
    # A heartbeat service's URL holds its secret: whoever knows it can ping, or pause, the check.
    CONF_HEARTBEAT_URL,
    "presented_host_key",
    "title",
    "unique_id",
    "address",  # a refused visitor's
    CONF_ALLOWED_NETWORKS,  # they may name the user's own networks
    CONF_REFUSED_NETWORKS,
    # As the host is: the public URL is normally the server's own name, and the targets name
    # machines of the home network. Settings show the forwards with their hosts left out.
    CONF_PUBLIC_URL,
    CONF_TARGET_HOST,
    CONF_EXTRA_FORWARDS,
}


def _state_dict(state: TunnelState) -> dict[str, Any]:
    return {
        "status": state.status,
        "since": state.since.isoformat(),
        "last_error": state.last_error,
        "reconnects": state.reconnects,
        "running": state.running,
        "presented_host_key": state.presented_host_key,
    }


def _forward_dict(forward: ExtraForward) -> dict[str, Any]:
    return {
        "remote_port": forward.remote_port,
        "target_host": REDACTED,
        "target_port": forward.port,
        "proxy_v2": forward.proxy_v2,
        "in_process": forward.in_process is not None,
    }


def _refusal_dict(refusal: VisitorRefusal) -> dict[str, Any]:
    return {"at": refusal.at.isoformat(), "address": refusal.address, "rule": refusal.rule}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry
) -> dict[str, Any]:
    """What a bug report needs, and nothing that identifies or opens the server."""
    tunnel = entry.runtime_data.tunnel
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "state": async_redact_data(_state_dict(tunnel.state), TO_REDACT),
        "history": [async_redact_data(_state_dict(state), TO_REDACT) for state in tunnel.history],
        "connection": tunnel.connection_details(),
        "settings": {
            "remote_port": tunnel.settings.remote_port,
            "bind_address": tunnel.settings.bind_address or "all interfaces",
            "target": f"{REDACTED}:{tunnel.settings.target_port}",
            "keepalive": [tunnel.settings.keepalive_interval, tunnel.settings.keepalive_count_max],
            "backoff_max": tunnel.settings.backoff.maximum,
            "extra_forwards": [
                _forward_dict(forward) for forward in tunnel.settings.extra_forwards
            ],
        },
        # Every place of the caps taken: new visitors are refused (the count is a sensor).
        "caps_full": tunnel.caps_full,
        "visitors_refused": [
            async_redact_data(_refusal_dict(refusal), TO_REDACT)
            for refusal in tunnel.visitors.refusals
        ],
        "asyncssh_version": version("asyncssh"),
    }
