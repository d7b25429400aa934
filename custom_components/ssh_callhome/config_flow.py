"""Config flow: the server, the key, a real connection, then the host key to confirm and pin."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import asyncssh
import voluptuous as vol

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .connection import check_tunnel, fetch_host_key
from .const import (
    CONF_HOST_KEY,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    DEFAULT_REMOTE_PORT,
    DEFAULT_SSH_PORT,
    DOMAIN,
)
from .keys import InvalidKey, WrongPassphrase, export_host_key, fingerprint, load_host_key
from .settings import async_load_client_key, tunnel_settings
from .state import Reason, describe, reason_for

_LOGGER = logging.getLogger(__name__)

# How long the flow waits for the server before it says it cannot connect.
_FLOW_TIMEOUT = 15.0

_KEY_FIELDS = {
    vol.Required(CONF_PRIVATE_KEY): TextSelector(TextSelectorConfig(multiline=True)),
    vol.Optional(CONF_PASSPHRASE): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD)),
}
USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_SSH_PORT): vol.Coerce(int),
        vol.Required(CONF_USERNAME): TextSelector(),
        vol.Required(CONF_REMOTE_PORT, default=DEFAULT_REMOTE_PORT): vol.Coerce(int),
        **_KEY_FIELDS,
    }
)
REAUTH_SCHEMA = vol.Schema(_KEY_FIELDS)

_ERROR_BY_REASON = {
    Reason.DNS: "cannot_connect",
    Reason.REFUSED: "cannot_connect",
    Reason.TIMEOUT: "cannot_connect",
    Reason.CONNECTION_LOST: "cannot_connect",
    Reason.AUTH: "invalid_auth",
    Reason.HOST_KEY: "host_key_changed",
    Reason.FORWARD_REFUSED: "forward_refused",
}


def field_errors(data: Mapping[str, Any]) -> dict[str, str]:
    """Errors in the values themselves, before anything is sent anywhere."""
    errors: dict[str, str] = {}
    host: str = data[CONF_HOST]
    if not host or any(char.isspace() or char in "@/" for char in host):
        errors[CONF_HOST] = "invalid_host"
    if not data[CONF_USERNAME] or any(char.isspace() for char in data[CONF_USERNAME]):
        errors[CONF_USERNAME] = "invalid_username"
    for port_field in (CONF_PORT, CONF_REMOTE_PORT):
        if not 1 <= data[port_field] <= 65535:
            errors[port_field] = "invalid_port"
    return errors


def _normalized(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The input with stray spaces around host and user removed and an empty passphrase dropped."""
    data = dict(user_input)
    for text_field in (CONF_HOST, CONF_USERNAME):
        if text_field in data:
            data[text_field] = data[text_field].strip()
    if not data.get(CONF_PASSPHRASE):
        data.pop(CONF_PASSPHRASE, None)
    return data


def _error_for(error: Exception) -> str:
    """The form error for a failed connection; unexpected ones are logged once."""
    reason = reason_for(error)
    if reason is Reason.UNKNOWN:
        _LOGGER.error("Unexpected error while checking the tunnel: %s", describe(error))
    return _ERROR_BY_REASON.get(reason, "unknown")


def unique_id(data: Mapping[str, Any]) -> str:
    """One entry per user, server and remote port."""
    host = data[CONF_HOST].lower()
    return f"{data[CONF_USERNAME]}@{host}:{data[CONF_PORT]}:{data[CONF_REMOTE_PORT]}"


class _FormError(Exception):
    """Ends a step with one error on the form."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(error)
        self.errors = {field: error}


async def _async_client_key(hass: HomeAssistant, data: Mapping[str, Any]) -> asyncssh.SSHKey:
    try:
        return await async_load_client_key(hass, data)
    except InvalidKey:
        raise _FormError(CONF_PRIVATE_KEY, "invalid_key") from None
    except WrongPassphrase:
        raise _FormError(CONF_PASSPHRASE, "wrong_passphrase") from None


async def _async_server_call[T](call: Awaitable[T]) -> T:
    """Await a call to the server; its failure becomes the form's error."""
    try:
        return await call
    except Exception as error:  # noqa: BLE001 - every failure becomes a form error
        raise _FormError("base", _error_for(error)) from None


class SshCallhomeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a tunnel: details, host-key confirmation, then a real connection."""

    VERSION = 1

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._client_key: asyncssh.SSHKey | None = None
        self._host_key: asyncssh.SSHKey | None = None
        self._confirmed_host_key: str | None = None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the server, the account and the key."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _normalized(user_input)
            errors = field_errors(data)
            if not errors:
                await self.async_set_unique_id(unique_id(data))
                self._abort_if_unique_id_configured()
                try:
                    return await self._async_read_server(data)
                except _FormError as error:
                    errors = error.errors
        return self._async_show_user_form(user_input, errors)

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the server's host-key fingerprint; continuing pins it."""
        host_key = self._required(self._host_key)
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                description_placeholders={
                    "fingerprint": fingerprint(host_key),
                    "algorithm": host_key.get_algorithm(),
                    "server": f"{self._data[CONF_HOST]}:{self._data[CONF_PORT]}",
                },
            )
        self._confirmed_host_key = export_host_key(host_key)
        try:
            await self._async_check_tunnel(self._data, self._required(self._client_key))
        except _FormError as error:
            # Most causes (key, port, account) are fixed in the first form.
            return self._async_show_user_form(self._data, error.errors)
        return self.async_create_entry(
            title=f"{self._data[CONF_USERNAME]}@{self._data[CONF_HOST]}",
            data={**self._data, CONF_HOST_KEY: self._confirmed_host_key},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The server rejected the stored key."""
        self._host_key = load_host_key(entry_data[CONF_HOST_KEY])
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a key the server accepts, check it, and reload the entry with it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            # The new key comes with its own passphrase, or none.
            kept = {key: value for key, value in entry.data.items() if key != CONF_PASSPHRASE}
            data = kept | _normalized(user_input)
            try:
                await self._async_check_tunnel(data, await _async_client_key(self.hass, data))
            except _FormError as error:
                errors = error.errors
            else:
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            errors=errors,
            description_placeholders={"account": entry.title},
        )

    async def _async_read_server(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Load the key and fetch the host key; a confirmed host key is not asked for again."""
        self._client_key = await _async_client_key(self.hass, data)
        self._host_key = await _async_server_call(
            fetch_host_key(data[CONF_HOST], data[CONF_PORT], _FLOW_TIMEOUT)
        )
        self._data = data
        if self._confirmed_host_key == export_host_key(self._host_key):
            return await self.async_step_confirm(user_input={})
        return await self.async_step_confirm()

    async def _async_check_tunnel(
        self, data: Mapping[str, Any], client_key: asyncssh.SSHKey
    ) -> None:
        """Connect with the pinned host key and take the forward for real, then release it."""
        settings = tunnel_settings(self.hass, data, client_key, self._required(self._host_key))
        await _async_server_call(check_tunnel(settings))

    def _async_show_user_form(
        self, values: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, values),
            errors=errors,
        )

    @staticmethod
    def _required[T](value: T | None) -> T:
        assert value is not None  # set by the step that led here
        return value
