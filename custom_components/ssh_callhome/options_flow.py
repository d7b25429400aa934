"""Options: how the tunnel connects, where it delivers, its caps, self-healing and heartbeat.

Saving reloads the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .authorize import authorize_placeholders, line_still_permits
from .builder import async_load_client_key
from .const import (
    BIND_ADDRESSES,
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
    CONF_SELF_HEAL_AFTER,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    EXPOSE_HOME_ASSISTANT,
    EXPOSE_WEBHOOKS,
    MODE_HOME_ASSISTANT,
    MODE_TCP,
)
from .extras import InvalidExtraForward, parse_extra_forwards
from .flow_forms import PORT_NUMBER, is_host_name, whole_number
from .heartbeat import is_heartbeat_url
from .public_url import InvalidPublicUrl, parse_public_url

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
    try:
        parse_extra_forwards(options.get(CONF_EXTRA_FORWARDS, ""))
    except InvalidExtraForward:
        errors[CONF_EXTRA_FORWARDS] = "invalid_extra_forwards"
    if options[CONF_PUBLIC_URL] is None:
        errors[CONF_PUBLIC_URL] = "invalid_public_url"
    if options[CONF_HEARTBEAT_URL] and not is_heartbeat_url(options[CONF_HEARTBEAT_URL]):
        errors[CONF_HEARTBEAT_URL] = "invalid_heartbeat_url"
    return errors


def _normalized(user_input: dict[str, Any]) -> dict[str, Any]:
    """Every option present (optional ones left out are empty); no target means Home Assistant.

    A public URL is kept as `scheme://host[:port]`; None marks one that is not valid.
    """
    options = {
        **user_input,
        CONF_TARGET_HOST: user_input.get(CONF_TARGET_HOST, "").strip(),
        CONF_EXTRA_FORWARDS: user_input.get(CONF_EXTRA_FORWARDS, ""),
        CONF_PUBLIC_URL: _public_url(user_input.get(CONF_PUBLIC_URL, "")),
        CONF_HEARTBEAT_URL: user_input.get(CONF_HEARTBEAT_URL, "").strip(),
    }
    if not options[CONF_TARGET_HOST]:
        options[CONF_TARGET_PORT] = 0
    return options


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

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the current options, save valid ones."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _normalized(user_input)
            errors = _errors(options)
            if not errors:
                entry = self.config_entry
                if line_still_permits(entry.data, entry.options, options):
                    return self.async_create_entry(data=options)
                self._pending = options
                return await self.async_step_authorize_forwards()
        current = user_input or self.config_entry.options
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, _shown(current)),
            errors=errors,
        )

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
