"""Every repair issue of the integration, and their fix flows.

Raised from the tunnel's state (a changed host key, lasting failures, a check that keeps
failing, the SSH Call Home add-on holding the remote port), from Home Assistant's own settings
(local exposure, too wide a proxy trust), and from the public URL: Home Assistant's companion
app, notifications and the links it sends use its `external_url`; when that is not the URL
visitors use through the tunnel, a repair offers to set it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from functools import partial
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Any

import voluptuous as vol

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from .addon import (
    AddonUnavailable,
    addon_holding_port,
    async_addon_still_holds_port,
    async_find_addons,
    async_retire_addon,
)
from .addresses import STAND_IN_NETWORK, visitor_address
from .const import (
    CONF_HOST_KEY,
    CONF_PUBLIC_URL,
    CONF_REMOTE_PORT,
    DOMAIN,
    PERSISTENT_FAILURE_SECONDS,
)
from .engine import (
    InvalidPublicUrl,
    Reason,
    Status,
    TunnelState,
    fingerprint,
    load_host_key,
    parse_public_url,
)
from .runtime_data import SshCallhomeConfigEntry

HOST_KEY_CHANGED = "host_key_changed"
CHECK_KEEPS_FAILING = "check_keeps_failing"
# The issue of a visitor that could look local; its id keeps the name it was first given, so
# that one dismissed under an earlier release stays dismissed.
LOCAL_EXPOSURE = "local_exposure"
# What makes it so: trusted proxies that cover more than the reverse proxy.
PROXY_TRUST_TOO_WIDE = "proxy_trust_too_wide"
_DEFAULT_LOOPBACK_STAND_IN = IPv6Address(visitor_address("127.0.0.1"))
# Failures that need the user on the server when they last: the issue each raises.
PERSISTENT_FAILURES = {Reason.FORWARD_REFUSED: "forward_refused", Reason.AUTH: "auth_failing"}
# The forward is refused because the SSH Call Home add-on runs and holds the remote port.
ADDON_HOLDS_PORT = "addon_holds_port"


def entry_issue_id(kind: str, entry_id: str) -> str:
    """The one way an issue of this integration is named: its kind, then its entry."""
    return f"{kind}_{entry_id}"


def _host_key_placeholders(entry: SshCallhomeConfigEntry, presented: str) -> dict[str, str]:
    return {
        "title": entry.title,
        "pinned": fingerprint(load_host_key(entry.data[CONF_HOST_KEY])),
        "presented": fingerprint(load_host_key(presented)),
    }


@callback
def async_sync_host_key_issue(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry, state: TunnelState
) -> None:
    """Raise the repair while the server presents another key; remove it once connected."""
    if state.last_error is Reason.HOST_KEY and state.presented_host_key is not None:
        ir.async_create_issue(
            hass,
            DOMAIN,
            entry_issue_id(HOST_KEY_CHANGED, entry.entry_id),
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=HOST_KEY_CHANGED,
            translation_placeholders=_host_key_placeholders(entry, state.presented_host_key),
            data={"entry_id": entry.entry_id, "presented_host_key": state.presented_host_key},
        )
    elif state.status is Status.CONNECTED:
        ir.async_delete_issue(hass, DOMAIN, entry_issue_id(HOST_KEY_CHANGED, entry.entry_id))


@callback
def async_sync_check_issue(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry, state: TunnelState, minutes: int
) -> None:
    """Raise the repair while a reconnect is held back; remove it once the check passes."""
    issue_id = entry_issue_id(CHECK_KEEPS_FAILING, entry.entry_id)
    if state.self_heal_held_back:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=CHECK_KEEPS_FAILING,
            translation_placeholders={
                "title": entry.title,
                "reason": state.failed_check or str(state.self_heal_reason),
                "remote_port": str(entry.data[CONF_REMOTE_PORT]),
                "minutes": str(minutes),
            },
        )
    elif state.check_passed:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_remove_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Forget the entry's issues, when the entry is removed."""
    for kind in (
        HOST_KEY_CHANGED,
        *PERSISTENT_FAILURES.values(),
        LOCAL_EXPOSURE,
        CHECK_KEEPS_FAILING,
        ADDON_HOLDS_PORT,
    ):
        ir.async_delete_issue(hass, DOMAIN, entry_issue_id(kind, entry_id))


class PersistentFailureIssues:
    """A repair when the forward stays refused, or the key stays rejected, for five minutes.

    Retries keep the reason; only a connection, or another reason, ends the wait or the issue.
    """

    def __init__(self, hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        self._reason: Reason | None = None
        self._cancel_timer: CALLBACK_TYPE | None = None

    @callback
    def __call__(self, state: TunnelState) -> None:
        """A listener of the engine."""
        reason = None if state.status is Status.CONNECTED else state.last_error
        if reason not in PERSISTENT_FAILURES:
            reason = None
        if reason is self._reason:
            return
        self.async_stop()
        self._reason = reason
        if reason is not None:
            self._cancel_timer = async_call_later(
                self._hass, PERSISTENT_FAILURE_SECONDS, partial(self._async_raise, reason)
            )

    @callback
    def async_stop(self) -> None:
        """Cancel the wait and remove the issue raised, if any."""
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        if self._reason is not None:
            ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(self._reason))

    def _issue_id(self, reason: Reason) -> str:
        return entry_issue_id(PERSISTENT_FAILURES[reason], self._entry.entry_id)

    @callback
    def _async_raise(self, reason: Reason, _now: datetime) -> None:
        self._cancel_timer = None
        addon_issue = entry_issue_id(ADDON_HOLDS_PORT, self._entry.entry_id)
        if ir.async_get(self._hass).async_get_issue(DOMAIN, addon_issue) is not None:
            return  # that repair already says who holds the port, and offers the fix
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self._issue_id(reason),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=PERSISTENT_FAILURES[reason],
            translation_placeholders={
                "title": self._entry.title,
                "remote_port": str(self._entry.data[CONF_REMOTE_PORT]),
                "minutes": str(round(PERSISTENT_FAILURE_SECONDS / 60)),
            },
        )


class AddonHoldsPortIssue:
    """A repair naming the add-on when the forward is refused while it runs with that port.

    Looked for once each time the forward starts being refused (retries keep the reason);
    removed once the tunnel is up. Registered only where a Supervisor runs. The entities show
    the add-on too (through the coordinators), until the refusal ends or the fix stops it.
    """

    def __init__(self, hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        self._refused = False

    @property
    def issue_id(self) -> str:
        """The entry's issue."""
        return entry_issue_id(ADDON_HOLDS_PORT, self._entry.entry_id)

    @callback
    def __call__(self, state: TunnelState) -> None:
        """A listener of the engine."""
        if state.status is Status.CONNECTED:
            self._refused = False
            self.async_remove()
            _async_show_port_holder(self._entry, None)
            return
        refused = state.last_error is Reason.FORWARD_REFUSED
        newly_refused = refused and not self._refused
        # Set before the look starts: it may run to its end before the task call returns.
        self._refused = refused
        if not refused:
            _async_show_port_holder(self._entry, None)
        if newly_refused:
            self._entry.async_create_background_task(
                self._hass, self._async_look_for_addon(), f"{DOMAIN} add-on holding the port"
            )

    async def _async_look_for_addon(self) -> None:
        addon = addon_holding_port(await async_find_addons(self._hass), self._entry.data)
        # The forward may have been taken while the Supervisor answered.
        if addon is None or not self._refused:
            return
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self.issue_id,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ADDON_HOLDS_PORT,
            translation_placeholders=_addon_placeholders(self._entry, addon.name),
            data={"entry_id": self._entry.entry_id, "slug": addon.slug, "name": addon.name},
        )
        _async_show_port_holder(self._entry, addon.name)

    @callback
    def async_remove(self) -> None:
        """Remove the issue, if raised."""
        ir.async_delete_issue(self._hass, DOMAIN, self.issue_id)


@callback
def _async_show_port_holder(entry: SshCallhomeConfigEntry, addon_name: str | None) -> None:
    """The entities show the add-on holding the port (None: no add-on does, or no longer)."""
    entry.runtime_data.coordinators.async_port_held_by_addon(addon_name)


def _addon_placeholders(entry: SshCallhomeConfigEntry, addon_name: str) -> dict[str, str]:
    return {
        "title": entry.title,
        "addon": addon_name,
        "remote_port": str(entry.data[CONF_REMOTE_PORT]),
    }


class _EntryConfirmRepairFlow(RepairsFlow, ABC):
    """A repair of one entry: a confirmation showing `_placeholders`, then `_async_confirmed`."""

    def __init__(self, entry_id: str) -> None:
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Show the confirmation; once the user agrees, fix."""
        entry: SshCallhomeConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                data_schema=vol.Schema({}),
                description_placeholders=self._placeholders(entry),
            )
        return await self._async_confirmed(entry)

    @abstractmethod
    def _placeholders(self, entry: SshCallhomeConfigEntry) -> dict[str, str]:
        """What the confirmation shows."""

    @abstractmethod
    async def _async_confirmed(self, entry: SshCallhomeConfigEntry) -> FlowResult:
        """Fix, the user having agreed."""


class AddonHoldsPortRepairFlow(_EntryConfirmRepairFlow):
    """Confirming stops the add-on and turns its start at boot off; the tunnel then comes up.

    Nothing happens to the add-on without this confirmation; its options stay, and it stays
    installed.
    """

    def __init__(self, entry_id: str, slug: str, name: str) -> None:
        super().__init__(entry_id)
        self._slug = slug
        self._name = name

    def _placeholders(self, entry: SshCallhomeConfigEntry) -> dict[str, str]:
        return _addon_placeholders(entry, self._name)

    async def _async_confirmed(self, entry: SshCallhomeConfigEntry) -> FlowResult:
        """Stop the add-on, and have the tunnel try again at once."""
        try:
            # Raised a while ago: the add-on may since have moved, been removed or replaced.
            if not await async_addon_still_holds_port(self.hass, self._slug, entry.data):
                ir.async_delete_issue(
                    self.hass, DOMAIN, entry_issue_id(ADDON_HOLDS_PORT, self._entry_id)
                )
                return self.async_abort(
                    reason="addon_changed", description_placeholders={"addon": self._name}
                )
            await async_retire_addon(self.hass, self._slug)
        except AddonUnavailable:
            return self.async_abort(
                reason="addon_stop_failed", description_placeholders={"addon": self._name}
            )
        if entry.state is ConfigEntryState.LOADED:
            # Stopped: should the forward be refused again, something else holds the port.
            _async_show_port_holder(entry, None)
            # Without this the next try of the forward may be minutes away (its backoff).
            entry.runtime_data.tunnel.request_reconnect()
        return self.async_create_entry(data={})


class HostKeyChangedRepairFlow(_EntryConfirmRepairFlow):
    """Shows both fingerprints; confirming pins the presented key and restarts the tunnel."""

    def __init__(self, entry_id: str, presented_host_key: str) -> None:
        super().__init__(entry_id)
        self._presented = presented_host_key

    def _placeholders(self, entry: SshCallhomeConfigEntry) -> dict[str, str]:
        return _host_key_placeholders(entry, self._presented)

    async def _async_confirmed(self, entry: SshCallhomeConfigEntry) -> FlowResult:
        """Trust the presented key, the user having compared the fingerprints."""
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_HOST_KEY: self._presented}
        )
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data={})


EXTERNAL_URL_DIFFERS = "external_url_differs"


def external_url_issue_id(entry_id: str) -> str:
    """The repair of one entry (named as every issue of this integration: kind, then entry)."""
    return f"{EXTERNAL_URL_DIFFERS}_{entry_id}"


@callback
def async_follow_external_url(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
    """Raise or clear the repair now, and again whenever Home Assistant's URLs change."""
    async_sync_external_url_issue(hass, entry)

    @callback
    def core_config_updated(_event: Event[Any]) -> None:
        async_sync_external_url_issue(hass, entry)

    entry.async_on_unload(hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, core_config_updated))
    entry.async_on_unload(
        partial(ir.async_delete_issue, hass, DOMAIN, external_url_issue_id(entry.entry_id))
    )


@callback
def async_sync_external_url_issue(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
    """The repair exists exactly while a public URL is set and external_url is another one."""
    public_url: str = entry.options.get(CONF_PUBLIC_URL, "")
    issue_id = external_url_issue_id(entry.entry_id)
    if not public_url or _same_url(hass.config.external_url, public_url):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=EXTERNAL_URL_DIFFERS,
        translation_placeholders=_placeholders(hass, entry.title, public_url),
        data={"entry_id": entry.entry_id, "public_url": public_url},
    )


def _same_url(external_url: str | None, public_url: str) -> bool:
    """Whether external_url is the public URL, written the same way or not."""
    if external_url is None:
        return False
    try:
        return parse_public_url(external_url) == public_url
    except InvalidPublicUrl:  # a path in external_url: not where visitors arrive
        return False


def _placeholders(hass: HomeAssistant, title: str, public_url: str) -> dict[str, str]:
    return {
        "title": title,
        "public_url": public_url,
        "external_url": hass.config.external_url or "not set",
    }


class ExternalUrlRepairFlow(RepairsFlow):
    """Shows both URLs; confirming sets external_url through Home Assistant's own config API."""

    def __init__(self, entry_id: str, public_url: str) -> None:
        self._entry_id = entry_id
        self._public_url = public_url

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Set external_url once the user agrees; the change clears the repair."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is not None:
            await self.hass.config.async_update(external_url=self._public_url)
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=_placeholders(self.hass, entry.title, self._public_url),
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of one of our issues."""
    assert data is not None  # every fixable issue of ours carries its data
    entry_id = str(data["entry_id"])
    if issue_id == external_url_issue_id(entry_id):
        return ExternalUrlRepairFlow(entry_id, str(data["public_url"]))
    if issue_id == entry_issue_id(ADDON_HOLDS_PORT, entry_id):
        return AddonHoldsPortRepairFlow(entry_id, str(data["slug"]), str(data["name"]))
    return HostKeyChangedRepairFlow(entry_id, str(data["presented_host_key"]))


@callback
def async_audit_local_exposure(
    hass: HomeAssistant, entry: SshCallhomeConfigEntry, http_server_in_process: bool
) -> None:
    """A repair when a visitor could look local to Home Assistant.

    In process (main or extra forward, `http_server_in_process`), every local originator on
    the server has its own stand-in address: trusting more than one of them as a proxy lets any
    process or neighbour of the server claim a local address.
    """
    exposure_issue = entry_issue_id(LOCAL_EXPOSURE, entry.entry_id)
    problems = _too_wide_proxy_trust(hass) if http_server_in_process else []
    if not problems:
        ir.async_delete_issue(hass, DOMAIN, exposure_issue)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        exposure_issue,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=PROXY_TRUST_TOO_WIDE,
        translation_placeholders={"title": entry.title, "problems": ", ".join(problems)},
    )


def _too_wide_proxy_trust(hass: HomeAssistant) -> list[str]:
    """The trusted proxies that cover more than one proxy's stand-in address."""
    return [
        str(network) for network in _trusted_proxies(hass) if _trusts_more_than_a_proxy(network)
    ]


def _trusted_proxies(hass: HomeAssistant) -> list[IPv4Network | IPv6Network]:
    """The networks whose X-Forwarded-For Home Assistant believes.

    Home Assistant keeps `trusted_proxies` at run time but not `use_x_forwarded_for`; it accepts
    the one only together with the other, so listed proxies are taken as meant to be used.
    """
    return list(hass.http.trusted_proxies)


def _trusts_more_than_a_proxy(network: IPv4Network | IPv6Network) -> bool:
    """Whether a trusted network covers more than one originator's stand-in address.

    The stand-in of 127.0.0.1 counts as many: every program on the server connects from there
    unless told otherwise.
    """
    if not isinstance(network, IPv6Network) or not network.overlaps(STAND_IN_NETWORK):
        return False
    return network.num_addresses > 1 or _DEFAULT_LOOPBACK_STAND_IN in network
