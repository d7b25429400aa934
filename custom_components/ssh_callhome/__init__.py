"""SSH Call Home: a reverse SSH tunnel from Home Assistant to the user's own server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.hassio import is_hassio
from homeassistant.helpers.typing import ConfigType

from .addon import async_offer_addon_import
from .builder import (
    async_engine_input,
    async_load_client_key,
    async_tcp_target_is_home_assistant,
)
from .const import (
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_URL,
    CONF_HOST_KEY,
    CONF_MODE,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
    ENTRY_VERSION,
    MODE_HOME_ASSISTANT,
    MODE_TCP,
)
from .coordinator import EngineCoordinators
from .engine import KeyProblem, Reason, Status, Tunnel, TunnelState, load_host_key
from .events import SelfHealEvents, StateChangeEvents, VisitorRefusedEvents
from .heartbeat import Heartbeat
from .probe_view import async_register_probe_view
from .repairs import (
    AddonHoldsPortIssue,
    PersistentFailureIssues,
    async_audit_local_exposure,
    async_follow_external_url,
    async_remove_issues,
    async_sync_check_issue,
    async_sync_host_key_issue,
)
from .runtime_data import SshCallhomeConfigEntry, SshCallhomeData
from .services import async_setup_services
from .webhooks_only import async_setup_webhooks_only

PLATFORMS = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, whatever the number of entries."""
    _quiet_asyncssh_channel_logging()
    async_setup_services(hass)
    async_register_probe_view(hass)
    await async_setup_webhooks_only(hass)
    async_offer_addon_import(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> bool:
    """Start the tunnel engine; the entry loads even while the server is unreachable."""
    try:
        client_key = await async_load_client_key(hass, entry.data)
    except KeyProblem as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="stored_key_unusable"
        ) from err
    host_key = load_host_key(entry.data[CONF_HOST_KEY])
    engine = await async_engine_input(
        hass, entry.data, entry.options, (client_key, host_key), entry.async_on_unload
    )
    async_follow_external_url(hass, entry)
    async_audit_local_exposure(hass, entry, engine.http_server_in_process)
    tunnel = Tunnel(engine.settings, engine.target)
    heartbeat = None
    if url := entry.options[CONF_HEARTBEAT_URL]:
        interval = timedelta(minutes=entry.options[CONF_HEARTBEAT_INTERVAL])
        heartbeat = Heartbeat(hass, tunnel, url, interval)
    coordinators = EngineCoordinators.for_tunnel(hass, entry, tunnel)
    entry.runtime_data = SshCallhomeData(tunnel, heartbeat, coordinators)
    _add_state_listeners(hass, entry, tunnel)
    if heartbeat is not None:
        _add_heartbeat(entry, heartbeat)
    # The entities hear of a change after the events, repairs and heartbeat, as they always did.
    coordinators.async_follow(entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # Cancelled on unload and on shutdown; the engine closes its connection when cancelled.
    entry.async_create_background_task(hass, tunnel.run(), f"{DOMAIN} {entry.title}")
    return True


def _add_state_listeners(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry, tunnel: Tunnel
) -> None:
    """What Home Assistant does about the tunnel's state, besides the entities."""
    persistent_failures = PersistentFailureIssues(hass, entry)
    entry.async_on_unload(persistent_failures.async_stop)
    for listener in (
        _reauth_and_repairs_listener(hass, entry),
        StateChangeEvents(hass, entry.entry_id, tunnel.state),
        SelfHealEvents(hass, entry.entry_id, tunnel.state),
        persistent_failures,
    ):
        entry.async_on_unload(tunnel.add_listener(listener))
    visitor_refused = VisitorRefusedEvents(hass, entry.entry_id)
    entry.async_on_unload(tunnel.visitors.add_listener(visitor_refused))
    if is_hassio(hass):
        addon_holds_port = AddonHoldsPortIssue(hass, entry)
        entry.async_on_unload(addon_holds_port.async_remove)
        entry.async_on_unload(tunnel.add_listener(addon_holds_port))


def _add_heartbeat(entry: SshCallhomeConfigEntry, heartbeat: Heartbeat) -> None:
    """The heartbeat follows the tunnel's state until the entry unloads."""
    entry.async_on_unload(heartbeat.async_stop)
    entry.async_on_unload(entry.runtime_data.tunnel.add_listener(heartbeat))


async def async_migrate_entry(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> bool:
    """Store the default of every option the entry lacks, so that nothing merges them later.

    Each release that adds an option bumps the minor version: this then fills it in. From
    minor 4 on, TCP mode to Home Assistant's own web server is stored as what it is delivered
    as, and what the options form now requires: delivery to Home Assistant.
    """
    if entry.version > ENTRY_VERSION:
        # Written by a newer release: nothing here knows its layout.
        return False
    if entry.minor_version < ENTRY_MINOR_VERSION:
        options = {**DEFAULT_OPTIONS, **entry.options}
        if options[CONF_MODE] == MODE_TCP and await async_tcp_target_is_home_assistant(
            hass, options
        ):
            options |= {CONF_MODE: MODE_HOME_ASSISTANT, CONF_TARGET_HOST: "", CONF_TARGET_PORT: 0}
        hass.config_entries.async_update_entry(
            entry, options=options, minor_version=ENTRY_MINOR_VERSION
        )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> bool:
    """Unload the platforms; the engine task is cancelled by Home Assistant with the entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
    """Take the entry's repair issues with it."""
    async_remove_issues(hass, entry.entry_id)


def _reauth_and_repairs_listener(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry
) -> Callable[[TunnelState], None]:
    """Ask for a new key when the server rejects this one; raise or clear the state's repairs."""
    minutes = round(entry.runtime_data.tunnel.settings.self_heal.min_gap / 60)

    @callback
    def listener(state: TunnelState) -> None:
        if state.status is Status.DISCONNECTED and state.last_error is Reason.AUTH:
            # Home Assistant starts at most one reauth flow per entry.
            entry.async_start_reauth(hass)
        async_sync_host_key_issue(hass, entry, state)
        async_sync_check_issue(hass, entry, state, minutes)

    return listener


def _quiet_asyncssh_channel_logging() -> None:
    """Asyncssh logs every channel at INFO; keep its chatter out unless asked for."""
    asyncssh_logger = logging.getLogger("asyncssh")
    if asyncssh_logger.level == logging.NOTSET:
        asyncssh_logger.setLevel(logging.WARNING)
