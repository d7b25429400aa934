"""Collecting every secret the integration handles during a test, to prove none leaks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import asyncssh

# Shorter base64 lines occur in many keys alike (padding, check bytes): no secret in them.
_MIN_SECRET_LINE = 16


class SecretRecorder:
    """Wraps the integration's key loading and generation to note each key and passphrase."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def add_key_text(self, text: str) -> None:
        """Every line of a private key file that carries key material."""
        for raw_line in text.replace("\r", "\n").split("\n"):
            line = raw_line.strip()
            if len(line) >= _MIN_SECRET_LINE and not line.startswith("-----"):
                self.secrets.add(line)

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
            if passphrase:
                self.secrets.add(passphrase)
            key = load(text, passphrase)
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
        return sorted(
            {f"{secret[:4]}…" for text in texts for secret in self.secrets if secret in text}
        )


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
