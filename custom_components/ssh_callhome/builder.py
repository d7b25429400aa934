"""One config entry (data and options) turned into everything the engine is started with.

The Home Assistant side's only builder of engine input: the entry's setup and the config flow's
check both come here, so where connections go (the delivery) is decided once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from functools import partial
from typing import Any

import asyncssh

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import CALLBACK_TYPE, HomeAssistant

from .const import (
    BIND_ADDRESSES,
    CONF_ALLOWED_NETWORKS,
    CONF_BACKOFF_MAX,
    CONF_BIND,
    CONF_EXPOSE,
    CONF_EXTRA_FORWARDS,
    CONF_KEEPALIVE_COUNT,
    CONF_KEEPALIVE_INTERVAL,
    CONF_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_MODE,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_PROBE_INTERVAL,
    CONF_PUBLIC_URL,
    CONF_REFUSED_NETWORKS,
    CONF_REMOTE_PORT,
    CONF_SELF_HEAL_AFTER,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    EXPOSE_WEBHOOKS,
    MODE_HOME_ASSISTANT,
)
from .engine import (
    BackoffPolicy,
    ConnectionLimits,
    ExtraForward,
    ProbeSpec,
    PublicUrlCheck,
    SelfHealPolicy,
    SessionTarget,
    TunnelSettings,
    VisitorPolicy,
    load_private_key,
    parse_extra_forwards,
    parse_networks,
    system_tls_context,
    tcp_target,
)
from .http_client import async_bounded_session
from .own_server import async_is_home_assistant_http
from .probe_view import async_forget_probe, async_new_probe
from .targets import home_assistant_target, http_target
from .webhooks_only import webhooks_only_target


class Delivery(Enum):
    """Where the tunnel hands the connections it receives."""

    # Home Assistant's own HTTP server, in process, with the visitor's address.
    IN_PROCESS = auto()
    # In process too, to Home Assistant's webhooks and nothing else (webhooks_only.py).
    WEBHOOKS_ONLY = auto()
    # The TCP target the options name, which is not Home Assistant's own HTTP server.
    OTHER_TCP_TARGET = auto()

    @property
    def reaches_home_assistant(self) -> bool:
        """Whether connections end at Home Assistant (so the probe applies).

        Its HTTP server, or its webhooks beside it, which answer the probe too.
        """
        return self is not Delivery.OTHER_TCP_TARGET


async def async_tcp_target_is_home_assistant(
    hass: HomeAssistant, options: Mapping[str, Any]
) -> bool:
    """Whether the options' TCP target is Home Assistant's own HTTP server.

    No target is (it meant Home Assistant's own port, as the add-on did), and so is any name
    of it (127.0.0.1:8123, localhost, this machine's host name: own_server.py).
    """
    target_host: str = options[CONF_TARGET_HOST]
    return not target_host or await async_is_home_assistant_http(
        hass, target_host, options[CONF_TARGET_PORT]
    )


async def _async_delivery(hass: HomeAssistant, options: Mapping[str, Any]) -> Delivery:
    """The one place the entry's mode and target are read to decide where connections go.

    TCP mode to Home Assistant's own HTTP server is delivered in process as well, with the
    entry's exposure: over TCP every visitor would arrive from a local address. The form
    refuses such options and migration rewrites them; this holds for a name whose meaning
    changed since (a host name now resolving to this machine).
    """
    if options[CONF_MODE] != MODE_HOME_ASSISTANT and not await async_tcp_target_is_home_assistant(
        hass, options
    ):
        return Delivery.OTHER_TCP_TARGET
    if options[CONF_EXPOSE] == EXPOSE_WEBHOOKS:
        return Delivery.WEBHOOKS_ONLY
    return Delivery.IN_PROCESS


def _exposed_in_process(hass: HomeAssistant, options: Mapping[str, Any]) -> SessionTarget:
    """Home Assistant's HTTP server in process, as much of it as the entry exposes."""
    if options[CONF_EXPOSE] == EXPOSE_WEBHOOKS:
        return webhooks_only_target(hass)
    return home_assistant_target(hass)


async def _async_extra_forwards(
    hass: HomeAssistant, options: Mapping[str, Any]
) -> tuple[ExtraForward, ...]:
    """The entry's extra forwards; one to Home Assistant's own HTTP server goes in process.

    Over TCP it would deliver every visitor from a local address, and all of Home Assistant
    whatever the entry exposes. In process it is what the main forward is: the visitor's
    address, and webhooks only when the entry says so (also in TCP mode, where the form
    refuses webhooks only for the main forward: the narrower exposure wins).
    """
    return tuple(
        [
            forward.delivered_in_process(_exposed_in_process(hass, options))
            if await async_is_home_assistant_http(hass, forward.host, forward.port)
            else forward
            for forward in parse_extra_forwards(options[CONF_EXTRA_FORWARDS])
        ]
    )


@dataclass(frozen=True, slots=True)
class EngineInput:
    """What `Tunnel` is made with, and what the repairs need to know of where it delivers.

    `http_server_in_process`: some forward (main or extra) hands visitors to all of Home
    Assistant's HTTP server in process, where its forwarded-header middleware reads
    `trusted_proxies` (Webhooks only runs none of Home Assistant's middlewares).
    """

    settings: TunnelSettings
    target: SessionTarget
    http_server_in_process: bool


async def async_load_client_key(hass: HomeAssistant, data: Mapping[str, Any]) -> asyncssh.SSHKey:
    """Import the entry's private key in the executor (bcrypt and RSA are slow)."""
    return await hass.async_add_executor_job(
        load_private_key, data[CONF_PRIVATE_KEY], data.get(CONF_PASSPHRASE)
    )


async def async_engine_input(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    keys: tuple[asyncssh.SSHKey, asyncssh.SSHKey],
    probe_until: Callable[[CALLBACK_TYPE], object] | None = None,
) -> EngineInput:
    """Settings, target and probe for the entry's `data` and (complete) `options`.

    `keys` are the client key and the pinned host key, already loaded. `probe_until` receives
    the function that ends the probe (an entry's `async_on_unload`); without it, as for the
    flow's one-off check, no probe is made, nor the public URL's check.
    """
    chosen = await _async_delivery(hass, options)
    target_host, target_port = http_target(hass)
    if chosen is Delivery.OTHER_TCP_TARGET:
        target_host, target_port = options[CONF_TARGET_HOST], options[CONF_TARGET_PORT]
    probe: ProbeSpec | None = None
    public_url: PublicUrlCheck | None = None
    if probe_until is not None:
        public_url = await async_public_url_check(hass, options)
        if chosen.reaches_home_assistant:
            probe, token = await async_new_probe(hass, options[CONF_PROBE_INTERVAL])
            probe_until(partial(async_forget_probe, hass, token))
    settings = TunnelSettings(
        host=data[CONF_HOST],
        port=data[CONF_PORT],
        username=data[CONF_USERNAME],
        client_key=keys[0],
        host_key=keys[1],
        remote_port=data[CONF_REMOTE_PORT],
        target_host=target_host,
        target_port=target_port,
        bind_address=BIND_ADDRESSES[options[CONF_BIND]],
        keepalive_interval=options[CONF_KEEPALIVE_INTERVAL],
        keepalive_count_max=options[CONF_KEEPALIVE_COUNT],
        backoff=BackoffPolicy(maximum=options[CONF_BACKOFF_MAX]),
        probe=probe,
        public_url=public_url,
        extra_forwards=await _async_extra_forwards(hass, options),
        limits=ConnectionLimits(
            total=options[CONF_MAX_CONNECTIONS],
            per_visitor=options[CONF_MAX_CONNECTIONS_PER_VISITOR],
            visitors=VisitorPolicy(
                allowed=parse_networks(options[CONF_ALLOWED_NETWORKS]),
                refused=parse_networks(options[CONF_REFUSED_NETWORKS]),
            ),
        ),
        self_heal=SelfHealPolicy(after_failures=options[CONF_SELF_HEAL_AFTER]),
    )
    target: SessionTarget = (
        _exposed_in_process(hass, options)
        if chosen.reaches_home_assistant
        else partial(tcp_target, target_host, target_port)
    )
    return EngineInput(settings, target, _http_server_in_process(chosen, options, settings))


def _http_server_in_process(
    chosen: Delivery, options: Mapping[str, Any], settings: TunnelSettings
) -> bool:
    """Whether the main forward, or an extra one, meets all of Home Assistant's HTTP server.

    Every forward in process has the entry's exposure (`_exposed_in_process`): under Webhooks
    only, none does.
    """
    if options[CONF_EXPOSE] == EXPOSE_WEBHOOKS:
        return False
    return chosen is Delivery.IN_PROCESS or any(
        forward.in_process is not None for forward in settings.extra_forwards
    )


async def async_public_url_check(
    hass: HomeAssistant, options: Mapping[str, Any]
) -> PublicUrlCheck | None:
    """The check of the entry's public URL through Home Assistant's shared connection pool."""
    if not options[CONF_PUBLIC_URL]:
        return None
    # Loading the system's CAs reads files: not on the event loop.
    tls = await hass.async_add_executor_job(system_tls_context)
    return PublicUrlCheck(
        url=options[CONF_PUBLIC_URL], session=partial(async_bounded_session, hass), tls=tls
    )
