"""Collecting every secret the integration handles during a test, to prove none leaks."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from unittest.mock import patch

import asyncssh
import voluptuous_serialize

from homeassistant.core import EventBus
from homeassistant.data_entry_flow import FlowManager
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.issue_registry import IssueRegistry

from custom_components.ssh_callhome import diagnostics as diagnostics_module
from custom_components.ssh_callhome.engine.keys import WrongPassphrase

_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]+")
# Shorter base64 lines occur in many keys alike (padding, check bytes): no secret in them.
_MIN_SECRET_LINE = 16
# A shorter passphrase (tests generate any text as one) could not be told apart from other text.
_MIN_SECRET_PASSPHRASE = 8
# What a finished flow stores in its entry: storing the key there is the point.
_STORED_PARTS = frozenset({"data", "result"})


class SecretRecorder:
    """Wraps the integration's key loading and generation to note each key and passphrase."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        # Where each secret found so far went (a log, an event, ...), shortened.
        self.found: dict[str, set[str]] = {}

    def add_key_text(self, text: str) -> None:
        """Every line of a private key file that carries key material: its base64 lines.

        Other pasted text is no key; the property tests paste any text, constants of the code
        under test included, which log lines quote.
        """
        for raw_line in text.replace("\r", "\n").split("\n"):
            line = raw_line.strip()
            if _BASE64_LINE.fullmatch(line) and _distinctive(line, _MIN_SECRET_LINE):
                self.secrets.add(line)

    def add_passphrase(self, passphrase: str | None) -> None:
        """A passphrase given with a key, unless too short or plain to tell from other text.

        One given with text that is no key at all is not noted: see add_key_text.
        """
        if passphrase and _distinctive(passphrase, _MIN_SECRET_PASSPHRASE):
            self.secrets.add(passphrase)

    def add_key(self, key: asyncssh.SSHKey) -> None:
        """The key's unencrypted forms, whichever the user pasted."""
        for key_format in ("openssh", "pkcs8-pem"):
            self.add_key_text(key.export_private_key(key_format).decode())

    def wrap_loader(
        self, load: Callable[[str, str | None], asyncssh.SSHKey]
    ) -> Callable[[str, str | None], asyncssh.SSHKey]:
        """`load_private_key`, noting its input first."""

        def recording_load(text: str, passphrase: str | None) -> asyncssh.SSHKey:
            self.add_key_text(text)
            try:
                key = load(text, passphrase)
            except WrongPassphrase:
                # Typed for this key: perhaps the passphrase of another one.
                self.add_passphrase(passphrase)
                raise
            self.add_passphrase(passphrase)
            self.add_key(key)
            return key

        return recording_load

    def wrap_generator(self, generate: Callable[[], str]) -> Callable[[], str]:
        """`generate_private_key`, noting what it made."""

        def recording_generate() -> str:
            text = generate()
            self.add_key_text(text)
            return text

        return recording_generate

    def leaks(self, texts: Iterable[str]) -> list[str]:
        """The secrets found in any of `texts`, shortened so the report is no leak itself."""
        # A copy: keys are loaded (and their secrets noted) in executor threads meanwhile.
        secrets = frozenset(self.secrets)
        return sorted({f"{secret[:4]}…" for text in texts for secret in secrets if secret in text})

    def check(self, where: str, value: object) -> None:
        """Note the secrets in any text `value` holds, as having gone to `where`."""
        leaks = self.leaks(strings_in(value))
        if leaks:
            self.found.setdefault(where, set()).update(leaks)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Check what leaves Home Assistant as it leaves: each form, event, issue, diagnostics.

        Patched on the classes, so that it holds for whichever `hass` a test makes, and costs
        nothing to a test without one.
        """
        with (
            _wrapped(FlowManager, "_async_handle_step", self._flow_result),
            _wrapped(EventBus, "async_fire_internal", self._event),
            _wrapped(IssueRegistry, "async_get_or_create", self._issue),
            _wrapped(diagnostics_module, "async_get_config_entry_diagnostics", self._diagnostics),
        ):
            yield

    def _flow_result(self, result: Mapping[str, Any], *_args: Any, **_kwargs: Any) -> None:
        shown = {part: value for part, value in result.items() if part not in _STORED_PARTS}
        schema = shown.pop("data_schema", None)
        if schema is not None:
            # As the flow view serializes it for the frontend, suggested values included.
            shown["data_schema"] = voluptuous_serialize.convert(
                schema, custom_serializer=cv.custom_serializer
            )
        self.check("flow result", shown)

    def _event(self, _result: None, _bus: EventBus, *args: Any, **kwargs: Any) -> None:
        self.check("event", (args, kwargs))

    def _issue(self, _result: object, _registry: IssueRegistry, *args: Any, **kwargs: Any) -> None:
        self.check("repair issue", (args, kwargs))

    def _diagnostics(self, result: Mapping[str, Any], *_args: Any) -> None:
        self.check("diagnostics", result)


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """What each log record would print: message, exception and stack."""
    formatter = logging.Formatter()
    texts = []
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        if record.stack_info:
            text += record.stack_info
        texts.append(text)
    return texts


def strings_in(value: object) -> Iterator[str]:
    """Every text in `value`: strings, keys and values of mappings, items, other objects' str()."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item)
    elif value is not None and not isinstance(value, int | float):
        yield str(value)


def _distinctive(text: str, min_length: int) -> bool:
    """Long enough, and varied enough (not '00000000'), to be found only where it leaked."""
    return len(text) >= min_length and len(set(text)) >= min_length // 2


def _wrapped(
    owner: object, name: str, observe: Callable[..., None]
) -> contextlib.AbstractContextManager[Any]:
    """Patch `owner.name` (sync or async) so that `observe` sees its result and arguments."""
    original = getattr(owner, name)
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            observe(result, *args, **kwargs)
            return result

        return patch.object(owner, name, async_wrapper)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        observe(result, *args, **kwargs)
        return result

    return patch.object(owner, name, wrapper)
