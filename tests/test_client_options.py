"""Nothing in HOME or the environment shapes a connection: only the pinned key is trusted.

asyncssh fills every option left at its default from the process's HOME and environment. An
impostor holding an X.509 certificate from a CA in ~/.ssh/ca-bundle.crt was accepted whatever
key was pinned; these tests try that, walk asyncssh's whole option list, and watch every file
a connection opens.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome import client_options
from custom_components.ssh_callhome.connection import (
    HostKeyChanged,
    open_connection,
)

from .conftest import loopback_settings
from .helpers.network import LOOPBACK


@pytest.fixture
def scratch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is a fresh directory, as both Path.expanduser and os.path.expanduser see it."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert Path("~").expanduser() == home
    assert os.path.expanduser("~/.ssh") == str(home / ".ssh")
    return home


class Impostor(asyncssh.SSHServer):
    """A server that records whether a client got as far as authenticating, and with what."""

    def __init__(self, seen: list[str]) -> None:
        self._seen = seen

    def begin_auth(self, username: str) -> bool:
        self._seen.append(f"authentication began for {username}")
        return True

    def public_key_auth_supported(self) -> bool:
        self._seen.append("public key authentication offered")
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._seen.append(f"key offered: {key.get_fingerprint()}")
        return False


@contextlib.asynccontextmanager
async def impostor_with_ca_certificate(
    ca_key: asyncssh.SSHKey, seen: list[str]
) -> AsyncIterator[int]:
    """An SSH server on loopback whose host key carries an X.509 certificate from `ca_key`."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    certificate = ca_key.generate_x509_host_certificate(
        host_key, "CN=impostor", issuer="CN=Home CA", principals=[LOOPBACK]
    )
    acceptor = await asyncssh.listen(
        LOOPBACK,
        0,
        server_host_keys=[(host_key, certificate)],
        server_factory=lambda: Impostor(seen),
        config=None,
    )
    try:
        yield int(acceptor.get_port())
    finally:
        acceptor.close()
        await acceptor.wait_closed()


async def test_an_x509_certificate_from_a_ca_in_home_does_not_replace_the_pin(
    socket_enabled: None, scratch_home: Path, client_key: asyncssh.SSHKey
) -> None:
    ca_key = asyncssh.generate_private_key("ssh-ed25519")
    ca_certificate = ca_key.generate_x509_ca_certificate(ca_key, "CN=Home CA")
    ca_certificate.write_certificate(scratch_home / ".ssh" / "ca-bundle.crt", "pem")
    pinned = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    seen: list[str] = []
    async with impostor_with_ca_certificate(ca_key, seen) as port:
        settings = loopback_settings(port, "root", client_key, pinned, 9)
        with pytest.raises(HostKeyChanged) as refused:
            await open_connection(settings)
    assert refused.value.presented != pinned
    assert seen == []


def test_only_the_pinned_keys_algorithms_are_offered(client_key: asyncssh.SSHKey) -> None:
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048).convert_to_public()
    assert {"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"} <= set(client_options.host_key_algs(rsa))
    ed25519 = client_key.convert_to_public()
    assert client_options.host_key_algs(ed25519) == ["ssh-ed25519"]
    for pinned in (rsa, ed25519):
        offered = client_options.host_key_algs(pinned)
        assert [alg for alg in offered if "x509" in alg or "cert" in alg] == []
