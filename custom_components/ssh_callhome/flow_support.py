"""Schemas, checks and error mapping shared by the config, reauth and reconfigure steps."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from typing import Any

import asyncssh
import voluptuous as vol

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType

from .builder import async_load_client_key
from .const import (
    BIND_ADDRESSES,
    CONF_BIND,
    CONF_EXTRA_FORWARDS,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DEFAULT_REMOTE_PORT,
    DEFAULT_SSH_PORT,
    VALID_PORTS,
)
from .extras import parse_extra_forwards
from .keys import InvalidKey, WeakKey, WrongPassphrase, authorized_keys_line
from .server_hello import ServerSoftware
from .server_setup import server_settings
from .state import Reason, describe, reason_for

_LOGGER = logging.getLogger(__name__)

SERVER_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_HOST): TextSelector(),
    vol.Required(CONF_PORT, default=DEFAULT_SSH_PORT): vol.Coerce(int),
    vol.Required(CONF_USERNAME): TextSelector(),
    vol.Required(CONF_REMOTE_PORT, default=DEFAULT_REMOTE_PORT): vol.Coerce(int),
}
_KEY_TEXT = TextSelector(TextSelectorConfig(multiline=True))
_PASSPHRASE = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
KEY_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_PRIVATE_KEY): _KEY_TEXT,
    vol.Optional(CONF_PASSPHRASE): _PASSPHRASE,
}
PASTE_SCHEMA = vol.Schema({**SERVER_FIELDS, **KEY_FIELDS})
GENERATE_SCHEMA = vol.Schema(SERVER_FIELDS)
KEY_SCHEMA = vol.Schema(KEY_FIELDS)
# Reconfiguring keeps the stored key unless a new one is pasted.
RECONFIGURE_SCHEMA = vol.Schema(
    {
        **SERVER_FIELDS,
        vol.Optional(CONF_PRIVATE_KEY): _KEY_TEXT,
        vol.Optional(CONF_PASSPHRASE): _PASSPHRASE,
    }
)

_ERROR_BY_REASON = {
    Reason.DNS: "cannot_connect",
    Reason.REFUSED: "cannot_connect",
    Reason.TIMEOUT: "cannot_connect",
    Reason.CONNECTION_LOST: "cannot_connect",
    Reason.AUTH: "invalid_auth",
    Reason.HOST_KEY: "host_key_changed",
    Reason.FORWARD_REFUSED: "forward_refused",
}


class FormError(Exception):
    """Ends a step with one error on its form."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(error)
        self.errors = {field: error}


def normalized(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The input with stray spaces around host and user removed and an empty passphrase dropped."""
    data = dict(user_input)
    for text_field in (CONF_HOST, CONF_USERNAME):
        if text_field in data:
            data[text_field] = data[text_field].strip()
    if not data.get(CONF_PASSPHRASE):
        data.pop(CONF_PASSPHRASE, None)
    return data


def check_server_fields(data: Mapping[str, Any]) -> None:
    """Errors in the values themselves, before anything is sent anywhere."""
    host: str = data[CONF_HOST]
    # Not printable: control characters and lone surrogates, which no name can hold.
    if not host or not host.isprintable() or any(char.isspace() or char in "@/" for char in host):
        raise FormError(CONF_HOST, "invalid_host")
    username: str = data[CONF_USERNAME]
    if not username or not username.isprintable() or any(char.isspace() for char in username):
        raise FormError(CONF_USERNAME, "invalid_username")
    for port_field in (CONF_PORT, CONF_REMOTE_PORT):
        if data[port_field] not in VALID_PORTS:
            raise FormError(port_field, "invalid_port")


def unique_id(data: Mapping[str, Any]) -> str:
    """One entry per user, server and remote port."""
    host = data[CONF_HOST].lower()
    return f"{data[CONF_USERNAME]}@{host}:{data[CONF_PORT]}:{data[CONF_REMOTE_PORT]}"


async def async_client_key(hass: HomeAssistant, data: Mapping[str, Any]) -> asyncssh.SSHKey:
    """The pasted key, loaded in the executor; a key we cannot use is a field error."""
    try:
        return await async_load_client_key(hass, data)
    except InvalidKey:
        raise FormError(CONF_PRIVATE_KEY, "invalid_key") from None
    except WeakKey:
        raise FormError(CONF_PRIVATE_KEY, "weak_key") from None
    except WrongPassphrase:
        raise FormError(CONF_PASSPHRASE, "wrong_passphrase") from None


async def async_server_call[T](call: Awaitable[T]) -> T:
    """Await a call to the server; its failure becomes the form's error."""
    try:
        return await call
    except Exception as error:  # noqa: BLE001 - every failure becomes a form error
        reason = reason_for(error)
        if reason is Reason.UNKNOWN:
            # Logged without traceback like every failure; the type and message say what it was.
            _LOGGER.error(  # noqa: TRY400
                "Unexpected error while checking the tunnel: %s", describe(error)
            )
        raise FormError("base", _ERROR_BY_REASON.get(reason, "unknown")) from None


def key_comment(location_name: str) -> str:
    """ssh_callhome@<location>, with what authorized_keys cannot hold in a comment removed."""
    location = re.sub(r"[^A-Za-z0-9._-]+", "_", location_name).strip("_") or "home"
    return f"ssh_callhome@{location}"


def server_software(data: Mapping[str, Any]) -> ServerSoftware:
    """The server software stored with an entry; entries from before it was stored are OpenSSH."""
    return ServerSoftware(data.get(CONF_SERVER_SOFTWARE, ServerSoftware.OPENSSH))


def remote_ports(data: Mapping[str, Any], options: Mapping[str, Any]) -> list[int]:
    """Every remote port the entry forwards: the tunnel's first, then the extra forwards'."""
    extras = parse_extra_forwards(options[CONF_EXTRA_FORWARDS])
    return [data[CONF_REMOTE_PORT], *(forward.remote_port for forward in extras)]


def line_still_permits(
    data: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]
) -> bool:
    """Whether the line shown for the options `before` lets through every forward of `after`.

    A permitlisten with a bare port allows any listen address; one with an address only that.
    Always true for Dropbear, whose line names no ports.
    """
    if server_software(data) is ServerSoftware.DROPBEAR:
        return True
    old_bind = BIND_ADDRESSES[before[CONF_BIND]]
    new_bind = BIND_ADDRESSES[after[CONF_BIND]]
    old_ports = remote_ports(data, before)
    return old_bind in ("", new_bind) and all(
        port in old_ports for port in remote_ports(data, after)
    )


def authorize_placeholders(
    client_key: asyncssh.SSHKey,
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    location_name: str,
) -> dict[str, str]:
    """The authorized_keys line, a command that adds it and the server's settings."""
    bind = BIND_ADDRESSES[options[CONF_BIND]]
    ports = remote_ports(data, options)
    software = server_software(data)
    line = authorized_keys_line(client_key, bind, ports, key_comment(location_name), software)
    return {
        "line": line,
        "command": f"echo '{line}' >> ~/.ssh/authorized_keys",
        "account": f"{data[CONF_USERNAME]}@{data[CONF_HOST]}",
        "settings": server_settings(software, data[CONF_USERNAME], bind, ports),
    }
