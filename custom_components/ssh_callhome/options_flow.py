"""Options: connecting, delivery, caps, who may come in, self-healing and the heartbeat.

Saving reloads the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult, OptionsFlowWithReload
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .addresses import is_local_originator
from .authorize import authorize_placeholders, line_still_permits
from .builder import async_load_client_key, async_tcp_target_is_home_assistant
from .const import (
    BIND_ADDRESSES,
    CONF_ALLOWED_NETWORKS,
    CONF_BACKOFF_MAX,
    CONF_BIND,
    CONF_EXPOSE,
    CONF_EXTRA_FORWARDS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HEARTBEAT_URL,
    CONF_KEEPALIVE_COUNT,
    CONF_KEEPALIVE_INTERVAL,
    CONF_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR,
    CONF_MODE,
    CONF_PROBE_INTERVAL,
    CONF_PUBLIC_URL,
    CONF_REFUSED_NETWORKS,
    CONF_SELF_HEAL_AFTER,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    EXPOSE_HOME_ASSISTANT,
    EXPOSE_WEBHOOKS,
    MODE_HOME_ASSISTANT,
    MODE_TCP,
)
from .engine import (
    InvalidExtraForward,
    InvalidNetwork,
    InvalidPublicUrl,
    Tunnel,
    parse_extra_forwards,
    parse_networks,
    parse_public_url,
)
from .flow_forms import PORT_NUMBER, is_host_name, whole_number
from .heartbeat import is_heartbeat_url

# Each network list and its error.
_NETWORK_LISTS = {
    CONF_ALLOWED_NETWORKS: "invalid_allowed_networks",
    CONF_REFUSED_NETWORKS: "invalid_refused_networks",
}
# Shown (as the form's error, once) when the lists would meet only local originators.
_LISTS_CANNOT_APPLY = "visitor_lists_cannot_apply"
# How much of a bad line the error quotes.
_QUOTED_LINE = 60

OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_KEEPALIVE_INTERVAL): whole_number(5, 300),
        vol.Required(CONF_KEEPALIVE_COUNT): whole_number(1, 10),
        vol.Required(CONF_BIND): SelectSelector(
            SelectSelectorConfig(
                options=list(BIND_ADDRESSES),
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_BIND,
            )
        ),
        vol.Required(CONF_BACKOFF_MAX): whole_number(10, 3600),
        vol.Required(CONF_PROBE_INTERVAL): whole_number(60, 3600),
        vol.Required(CONF_MODE): SelectSelector(
            SelectSelectorConfig(
                options=[MODE_HOME_ASSISTANT, MODE_TCP],
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_MODE,
            )
        ),
        vol.Required(CONF_EXPOSE): SelectSelector(
            SelectSelectorConfig(
                options=[EXPOSE_HOME_ASSISTANT, EXPOSE_WEBHOOKS],
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_EXPOSE,
            )
        ),
        vol.Optional(CONF_TARGET_HOST): TextSelector(),
        vol.Optional(CONF_TARGET_PORT): PORT_NUMBER,
        vol.Optional(CONF_EXTRA_FORWARDS): TextSelector(TextSelectorConfig(multiline=True)),
        # Fewer than 10 in all, or 6 per visitor (one browser's connections to a host), would turn
        # away an ordinary visit; at the top, 1000 windows are 500 MiB that visitors could fill.
        vol.Required(CONF_MAX_CONNECTIONS): whole_number(10, 1000),
        vol.Required(CONF_MAX_CONNECTIONS_PER_VISITOR): whole_number(6, 1000),
        vol.Optional(CONF_ALLOWED_NETWORKS): TextSelector(TextSelectorConfig(multiline=True)),
        vol.Optional(CONF_REFUSED_NETWORKS): TextSelector(TextSelectorConfig(multiline=True)),
        vol.Optional(CONF_PUBLIC_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        # Self-healing and the heartbeat.
        vol.Required(CONF_SELF_HEAL_AFTER): whole_number(0, 10),
        vol.Optional(CONF_HEARTBEAT_URL): TextSelector(
            TextSelectorConfig(type=TextSelectorType.URL)
        ),
        vol.Required(CONF_HEARTBEAT_INTERVAL): whole_number(1, 60),
    }
)


def _errors(options: dict[str, Any]) -> dict[str, str]:
    """What the schema cannot check: a target host's name and port, forwards their syntax.

    And Webhooks only needs the in-process mode: a TCP connection carries bytes to a target
    this side never reads as HTTP, so it cannot keep paths away from it.
    """
    errors = {}
    if options[CONF_EXPOSE] == EXPOSE_WEBHOOKS and options[CONF_MODE] != MODE_HOME_ASSISTANT:
        errors[CONF_EXPOSE] = "webhooks_only_in_process"
    target_host = options[CONF_TARGET_HOST]
    if target_host and not is_host_name(target_host):
        errors[CONF_TARGET_HOST] = "invalid_host"
    if target_host and CONF_TARGET_PORT not in options:
        errors[CONF_TARGET_PORT] = "invalid_port"
    if _bad_extra_forward(options) is not None:
        errors[CONF_EXTRA_FORWARDS] = "invalid_extra_forwards"
    if options[CONF_PUBLIC_URL] is None:
        errors[CONF_PUBLIC_URL] = "invalid_public_url"
    if options[CONF_HEARTBEAT_URL] and not is_heartbeat_url(options[CONF_HEARTBEAT_URL]):
        errors[CONF_HEARTBEAT_URL] = "invalid_heartbeat_url"
    return errors


async def _async_tcp_target_error(
    hass: HomeAssistant, options: Mapping[str, Any], errors: Mapping[str, str]
) -> dict[str, str]:
    """TCP mode to Home Assistant's own HTTP server (no target, or any name of it) is refused.

    Over TCP every visitor would arrive from a local address; delivery to Home Assistant hands
    them over with their own. A target the other checks refused is not looked up.
    """
    if options[CONF_MODE] != MODE_TCP or {CONF_TARGET_HOST, CONF_TARGET_PORT} & errors.keys():
        return {}
    if await async_tcp_target_is_home_assistant(hass, options):
        return {CONF_MODE: "tcp_target_is_home_assistant"}
    return {}


def _bad_extra_forward(options: Mapping[str, Any]) -> str | None:
    """The first line of the extra forwards that is not one, for the error to name."""
    try:
        parse_extra_forwards(options.get(CONF_EXTRA_FORWARDS, ""))
    except InvalidExtraForward as error:
        return error.line
    return None


def _network_errors(options: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Each network list's first bad line: the error, and the line it names (placeholders)."""
    errors, placeholders = {}, {}
    for option, error in _NETWORK_LISTS.items():
        try:
            parse_networks(options.get(option, ""))
        except InvalidNetwork as bad:
            errors[option] = error
            placeholders[f"{option}_line_number"] = str(bad.number)
            placeholders[f"{option}_line"] = bad.line[:_QUOTED_LINE]
    return errors, placeholders


def _normalized(user_input: dict[str, Any]) -> dict[str, Any]:
    """Every option present (optional ones left out are empty); no target stores port 0.

    A target host is kept without the brackets of an IPv6 literal (`[::1]`), as a connection
    needs it. A public URL is kept as `scheme://host[:port]`; None marks one that is not valid.
    """
    options = {
        **user_input,
        CONF_TARGET_HOST: _unbracketed(user_input.get(CONF_TARGET_HOST, "").strip()),
        CONF_EXTRA_FORWARDS: user_input.get(CONF_EXTRA_FORWARDS, ""),
        CONF_ALLOWED_NETWORKS: user_input.get(CONF_ALLOWED_NETWORKS, ""),
        CONF_REFUSED_NETWORKS: user_input.get(CONF_REFUSED_NETWORKS, ""),
        CONF_PUBLIC_URL: _public_url(user_input.get(CONF_PUBLIC_URL, "")),
        CONF_HEARTBEAT_URL: user_input.get(CONF_HEARTBEAT_URL, "").strip(),
    }
    if not options[CONF_TARGET_HOST]:
        options[CONF_TARGET_PORT] = 0
    return options


def _unbracketed(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _public_url(text: str) -> str | None:
    if not text.strip():
        return ""
    try:
        return parse_public_url(text)
    except InvalidPublicUrl:
        return None


def _shown(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the form shows them: no target port (stored as 0) is an empty box."""
    return {
        option: value for option, value in options.items() if option != CONF_TARGET_PORT or value
    }


class SshCallhomeOptionsFlow(OptionsFlowWithReload):
    """One form; its schema refuses numbers outside their range, field by field.

    Options that the key's restricted line no longer covers (a new extra forward, a listen
    address it does not name) lead to a second step with the new line, shown while the user is
    still at it: saving then reconnects with the line the server should have by then.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] = {}
        self._line: dict[str, str] = {}
        self._warned_lists_cannot_apply = False

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the current options, save valid ones.

        Network lists that would meet only local originators are saved too, once the form has
        warned about it.
        """
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        current = user_input or self.config_entry.options
        cannot_apply = self._lists_cannot_apply(current)
        if user_input is not None:
            options = _normalized(user_input)
            errors, placeholders = _network_errors(options)
            errors |= _errors(options)
            errors |= await _async_tcp_target_error(self.hass, options, errors)
            bad_forward = _bad_extra_forward(options)
            if bad_forward is not None:
                placeholders["bad_forward"] = bad_forward
            if not errors and (not cannot_apply or self._warned_lists_cannot_apply):
                entry = self.config_entry
                if line_still_permits(entry.data, entry.options, options):
                    return self.async_create_entry(data=options)
                self._pending = options
                return await self.async_step_authorize_forwards()
        if cannot_apply:
            errors.setdefault("base", _LISTS_CANNOT_APPLY)
            self._warned_lists_cannot_apply = True
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, _shown(current)),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _lists_cannot_apply(self, options: Mapping[str, Any]) -> bool:
        """Network lists are set, and every recent visitor had a local originator.

        Then the server reports the address of something on itself (a reverse proxy, or
        everything with GatewayPorts no), and the lists see that, not the visitors.
        """
        if not any(options.get(option, "").strip() for option in _NETWORK_LISTS):
            return False
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return False
        tunnel: Tunnel = entry.runtime_data.tunnel
        recent = tunnel.visitors.recent_originators
        return bool(recent) and all(is_local_originator(address) for address in recent)

    async def async_step_authorize_forwards(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The authorized_keys line and sshd settings for the new options; submitting saves."""
        if user_input is not None:
            return self.async_create_entry(data=self._pending)
        entry = self.config_entry
        client_key = await async_load_client_key(self.hass, entry.data)
        return self.async_show_form(
            step_id="authorize_forwards",
            description_placeholders=authorize_placeholders(
                client_key, entry.data, self._pending, self.hass.config.location_name
            ),
        )
