"""Turning a config entry (or a flow's input) into engine settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncssh

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .backoff import BackoffPolicy
from .connection import TunnelSettings
from .const import (
    BIND_ADDRESSES,
    CONF_ALLOWED_NETWORKS,
    CONF_BACKOFF_MAX,
    CONF_BIND,
    CONF_EXTRA_FORWARDS,
    CONF_KEEPALIVE_COUNT,
    CONF_KEEPALIVE_INTERVAL,
    CONF_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_MODE,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REFUSED_NETWORKS,
    CONF_REMOTE_PORT,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    MODE_TCP,
)
from .extras import parse_extra_forwards
from .keys import load_private_key
from .limits import ConnectionLimits
from .visitors import VisitorPolicy, parse_networks

_WILDCARDS = {"0.0.0.0", "::", "127.0.0.1"}  # noqa: S104 - addresses HA may bind, not ours


def http_target(hass: HomeAssistant) -> tuple[str, int]:
    """Where Home Assistant's own HTTP server listens, as seen from this process."""
    server_hosts = hass.http.server_host or ["0.0.0.0"]  # noqa: S104
    if _WILDCARDS.intersection(server_hosts):
        return "127.0.0.1", hass.http.server_port
    return server_hosts[0], hass.http.server_port


async def async_load_client_key(hass: HomeAssistant, data: Mapping[str, Any]) -> asyncssh.SSHKey:
    """Import the entry's private key in the executor (bcrypt and RSA are slow)."""
    return await hass.async_add_executor_job(
        load_private_key, data[CONF_PRIVATE_KEY], data.get(CONF_PASSPHRASE)
    )


def tunnel_settings(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    client_key: asyncssh.SSHKey,
    host_key: asyncssh.SSHKey,
    options: Mapping[str, Any] | None = None,
) -> TunnelSettings:
    """Settings for the engine from entry data, its options and the keys already loaded."""
    chosen = {**DEFAULT_OPTIONS, **(options or {})}
    target_host, target_port = http_target(hass)
    if chosen[CONF_MODE] == MODE_TCP and chosen[CONF_TARGET_HOST]:
        target_host, target_port = chosen[CONF_TARGET_HOST], chosen[CONF_TARGET_PORT]
    return TunnelSettings(
        host=data[CONF_HOST],
        port=data[CONF_PORT],
        username=data[CONF_USERNAME],
        client_key=client_key,
        host_key=host_key,
        remote_port=data[CONF_REMOTE_PORT],
        target_host=target_host,
        target_port=target_port,
        bind_address=BIND_ADDRESSES[chosen[CONF_BIND]],
        keepalive_interval=chosen[CONF_KEEPALIVE_INTERVAL],
        keepalive_count_max=chosen[CONF_KEEPALIVE_COUNT],
        backoff=BackoffPolicy(maximum=chosen[CONF_BACKOFF_MAX]),
        extra_forwards=parse_extra_forwards(chosen[CONF_EXTRA_FORWARDS]),
        limits=ConnectionLimits(
            total=chosen[CONF_MAX_CONNECTIONS],
            per_visitor=chosen[CONF_MAX_CONNECTIONS_PER_VISITOR],
            visitors=VisitorPolicy(
                allowed=parse_networks(chosen[CONF_ALLOWED_NETWORKS]),
                refused=parse_networks(chosen[CONF_REFUSED_NETWORKS]),
            ),
        ),
    )
