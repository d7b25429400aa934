"""Reading private keys in the forms users paste, and host-key fingerprints."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.keys import (
    InvalidKey,
    WrongPassphrase,
    export_host_key,
    fingerprint,
    load_host_key,
    load_private_key,
)


@functools.cache
def generated(algorithm: str) -> asyncssh.SSHKey:
    """One key per algorithm for the whole run: RSA generation is slow."""
    return asyncssh.generate_private_key(algorithm)


@pytest.mark.parametrize(
    ("algorithm", "key_format"),
    [
        ("ssh-ed25519", "openssh"),
        ("ssh-ed25519", "pkcs8-pem"),
        ("ecdsa-sha2-nistp256", "openssh"),
        ("ecdsa-sha2-nistp256", "pkcs1-pem"),
        ("ssh-rsa", "openssh"),
        ("ssh-rsa", "pkcs1-pem"),
        ("ssh-rsa", "pkcs8-pem"),
    ],
)
@pytest.mark.parametrize("passphrase", [None, "s3cret"])
def test_common_forms_load(algorithm: str, key_format: str, passphrase: str | None) -> None:
    key = generated(algorithm)
    # 16 bcrypt rounds, as ssh-keygen uses, instead of asyncssh's slower 128.
    text = key.export_private_key(key_format, passphrase, rounds=16).decode()
    loaded = load_private_key(text, passphrase)
    assert loaded.export_public_key() == key.export_public_key()
    if passphrase:
        with pytest.raises(WrongPassphrase):
            load_private_key(text, None)
        with pytest.raises(WrongPassphrase):
            load_private_key(text, "wrong")


def test_keys_made_by_ssh_keygen_load(tmp_path: Path) -> None:
    path = tmp_path / "id"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "keygen passphrase", "-f", str(path)],
        check=True,
    )
    loaded = load_private_key(path.read_text(), "keygen passphrase")
    assert export_host_key(loaded) == " ".join(path.with_suffix(".pub").read_text().split()[:2])


@pytest.mark.parametrize(
    "text",
    ["", "hello", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"],
)
def test_garbage_is_invalid(text: str) -> None:
    with pytest.raises(InvalidKey) as raised:
        load_private_key(text, None)
    assert text not in str(raised.value) or not text


def test_errors_never_carry_the_key(client_key_text: str) -> None:
    broken = client_key_text.replace("\n", " ")
    with pytest.raises(InvalidKey) as raised:
        load_private_key(broken, None)
    assert raised.value.__cause__ is None
    assert str(raised.value) == ""


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    public = path.with_suffix(".pub").read_text()
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(path.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert fingerprint(load_host_key(public)) == printed
