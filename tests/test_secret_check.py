"""The leak check that every test runs must itself be able to fail."""

from __future__ import annotations

import logging

from .helpers.secrets import SecretRecorder, record_texts


def test_a_key_line_in_a_log_is_found(
    no_secret_leaks: SecretRecorder, client_key_text: str
) -> None:
    line = client_key_text.splitlines()[2]
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pasted %s", (line,), None)
    assert no_secret_leaks.leaks(record_texts([record])) == [f"{line[:4]}…"]


def test_a_flattened_key_and_a_passphrase_are_found(
    no_secret_leaks: SecretRecorder, client_key_text: str
) -> None:
    no_secret_leaks.secrets.add("correct horse")
    flattened = " ".join(client_key_text.splitlines())
    texts = [f"bad key {flattened}", "passphrase was correct horse"]
    assert len(no_secret_leaks.leaks(texts)) >= 2
    assert "corr…" in no_secret_leaks.leaks(texts)
