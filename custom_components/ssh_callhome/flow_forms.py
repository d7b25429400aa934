"""The config flow's forms and the errors that end a step; number fields for the options too.

New entries, reauth and reconfigure share these forms. A number out of its range never reaches
a step: the form's schema refuses it, field by field, as the frontend shows it. What the schema
cannot say (a name with spaces, a key that does not load, a server that does not answer) ends a
step with a `FormError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncssh
import voluptuous as vol

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .builder import async_load_client_key
from .const import (
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    DEFAULT_REMOTE_PORT,
    DEFAULT_SSH_PORT,
)
from .engine import VALID_PORTS, InvalidKey, Reason, WeakKey, WrongPassphrase, describe, reason_for

_LOGGER = logging.getLogger(__name__)

# The longest key text taken. An RSA-4096 key as OpenSSH writes it is about 3.4 KiB, an
# RSA-16384 key (the largest anyone uses) about 12.7 KB; asyncssh ignores whatever follows the
# END line, so without a bound megabytes of it would be stored in the entry as the key.
MAX_KEY_TEXT = 16 * 1024
# The longest user name taken: what LDAP directories allow (Linux itself stops at 32), the
# server script's own bound. Unbounded, a name goes whole into the entry's unique id.
MAX_USERNAME_LENGTH = 256
# The longest host name DNS allows (RFC 1035); an address is far shorter.
MAX_HOST_LENGTH = 253
# The user names the server script takes (sh, useradd, `Match User` read them literally):
# letters, digits, `.`, `_`, `-`, `@`, not starting with `-` or `.`. Nothing markdown reads as
# a link or emphasis, so the flow's texts that name the account cannot be turned into a link.
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]*")
# What no host name or address holds, and markdown makes a link, an image or HTML of.
_MARKUP_IN_HOST = re.compile(r"[\[\]()<>`*\\]")


def whole_number(low: int, high: int) -> vol.All:
    """A number box from `low` to `high`; the selector gives a float, the entry keeps an int."""
    box = NumberSelectorConfig(min=low, max=high, step=1, mode=NumberSelectorMode.BOX)
    return vol.All(NumberSelector(box), vol.Coerce(int))


PORT_NUMBER = whole_number(VALID_PORTS[0], VALID_PORTS[-1])
SERVER_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_HOST): TextSelector(),
    vol.Required(CONF_PORT, default=DEFAULT_SSH_PORT): PORT_NUMBER,
    vol.Required(CONF_USERNAME): TextSelector(),
    vol.Required(CONF_REMOTE_PORT, default=DEFAULT_REMOTE_PORT): PORT_NUMBER,
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
    Reason.HOST_KEY: "host_key_changed",
    Reason.FORWARD_REFUSED: "forward_refused",
}


@dataclass(frozen=True, slots=True)
class StepForm:
    """A step's form: shown first, and again with an error and the values the user gave."""

    step_id: str
    schema: vol.Schema
    values: Mapping[str, Any]
    # What the step's description names (strings.json), if it names anything.
    placeholders: Mapping[str, str] | None = None


class FormError(Exception):
    """Ends a step with one error: `key` (strings.json) shown at `field`, "base" for the form."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field = field
        self.key = key

    @property
    def errors(self) -> dict[str, str]:
        """The error as a form shows it."""
        return {self.field: self.key}


class KeyRejected(FormError):
    """The server refused the key: the flow shows the line that authorizes it."""

    def __init__(self) -> None:
        super().__init__("base", "invalid_auth")


def normalized(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The input with stray spaces around host and user removed and an empty passphrase dropped."""
    data = dict(user_input)
    for text_field in (CONF_HOST, CONF_USERNAME):
        if text_field in data:
            data[text_field] = data[text_field].strip()
    if not data.get(CONF_PASSPHRASE):
        data.pop(CONF_PASSPHRASE, None)
    return data


def is_host_name(host: str) -> bool:
    """Whether `host` can be a host name or address: no spaces, user name or path.

    Not printable means control characters and lone surrogates, which no name can hold (and
    which Home Assistant could not even store).
    """
    return bool(host) and host.isprintable() and not any(c.isspace() or c in "@/" for c in host)


def check_server_fields(data: Mapping[str, Any]) -> None:
    """Errors in the names themselves, before anything is sent anywhere (ports: the schema)."""
    host: str = data[CONF_HOST]
    if len(host) > MAX_HOST_LENGTH or not is_host_name(host) or _MARKUP_IN_HOST.search(host):
        raise FormError(CONF_HOST, "invalid_host")
    username: str = data[CONF_USERNAME]
    if len(username) > MAX_USERNAME_LENGTH or not _ACCOUNT_NAME.fullmatch(username):
        raise FormError(CONF_USERNAME, "invalid_username")


def unique_id(data: Mapping[str, Any]) -> str:
    """One entry per user, server and remote port."""
    host = data[CONF_HOST].lower()
    return f"{data[CONF_USERNAME]}@{host}:{data[CONF_PORT]}:{data[CONF_REMOTE_PORT]}"


async def async_client_key(hass: HomeAssistant, data: Mapping[str, Any]) -> asyncssh.SSHKey:
    """The pasted key, loaded in the executor; a key we cannot use is a field error."""
    if len(data[CONF_PRIVATE_KEY]) > MAX_KEY_TEXT:
        raise FormError(CONF_PRIVATE_KEY, "key_too_long")
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
        if reason is Reason.AUTH:
            raise KeyRejected from None
        if reason is Reason.UNKNOWN:
            # Logged without traceback like every failure; the type and message say what it was.
            _LOGGER.error(  # noqa: TRY400
                "Unexpected error while checking the tunnel: %s", describe(error)
            )
        raise FormError("base", _ERROR_BY_REASON.get(reason, "unknown")) from None
