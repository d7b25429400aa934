"""Nothing in HOME or the environment shapes a connection: only the pinned key is trusted.

asyncssh fills every option left at its default from the process's HOME and environment. An
impostor holding an X.509 certificate from a CA in ~/.ssh/ca-bundle.crt was accepted whatever
key was pinned; these tests try that, walk asyncssh's whole option list, and watch every file
a connection opens.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from custom_components.ssh_callhome.engine import client_options
from custom_components.ssh_callhome.engine.connection import (
    HostKeyChanged,
    disable_server_nagle,
    fetch_host_key,
    open_connection,
    round_trip_ms,
)
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.engine import loopback_settings
from harness.network import LOOPBACK
from harness.openssh import OpenSSHServer


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


# asyncssh's client options (the parameters of SSHClientConnectionOptions.prepare), each in one
# class. Options whose default reads HOME, the environment or ssh_config, with the value that
# keeps them out: they must be passed, with that value.
SET_EXPLICITLY: dict[str, Callable[[object], bool]] = {
    "config": lambda value: value is None,  # ~/.ssh/config
    "known_hosts": lambda value: value is None or (isinstance(value, tuple) and bool(value[0])),
    "x509_trusted_certs": lambda value: value is None,  # ~/.ssh/ca-bundle.crt
    "x509_trusted_cert_paths": lambda value: value == [],  # ~/.ssh/crt/
    "client_keys": lambda value: value is None or isinstance(value, list),  # ~/.ssh/id_*
    "client_certs": lambda value: value == [],  # CertificateFile
    "ignore_encrypted": lambda value: value is False,
    "agent_path": lambda value: value is None,  # SSH_AUTH_SOCK
    "agent_identities": lambda value: value is None,  # ~/.ssh/id_*.pub
    "agent_forwarding": lambda value: value is False,
    "pkcs11_provider": lambda value: value is None,
    "host_based_auth": lambda value: value is False,
    "client_host_keysign": lambda value: value is False,  # ssh-keysign, /etc/ssh host keys
    "gss_kex": lambda value: value is False,  # KRB5CCNAME, the credential cache
    "gss_auth": lambda value: value is False,
    "gss_delegate_creds": lambda value: value is False,
    "x11_forwarding": lambda value: value is False,  # DISPLAY, ~/.Xauthority
    "send_env": lambda value: value is None,  # copies local environment variables
    "username": lambda value: isinstance(value, str),  # LOGNAME, USER
}
# Options whose default reads the environment or files only while another option is on; that
# one must be passed, off.
GATED_BY: dict[str, str] = {
    "x11_display": "x11_forwarding",  # DISPLAY
    "x11_auth_path": "x11_forwarding",  # XAUTHORITY, ~/.Xauthority
    "gss_host": "gss_auth",
    "gss_store": "gss_auth",  # KRB5CCNAME
    "client_username": "host_based_auth",  # LOGNAME, USER
    "client_host": "host_based_auth",
    "client_host_keys": "host_based_auth",
    "client_host_certs": "host_based_auth",
    "pkcs11_pin": "pkcs11_provider",
}
# Options whose default comes from ssh_config alone: nothing, with config=None.
FROM_SSH_CONFIG = frozenset(
    {
        "host", "port", "tunnel", "proxy_command", "family", "local_addr", "tcp_keepalive",
        "canonicalize_hostname", "canonical_domains", "canonicalize_fallback_local",
        "canonicalize_max_dots", "canonicalize_permitted_cnames", "kex_algs", "encryption_algs",
        "mac_algs", "compression_algs", "signature_algs", "server_host_key_algs",
        "public_key_auth", "kbdint_auth", "password_auth", "preferred_auth", "rekey_bytes",
        "rekey_seconds", "connect_timeout", "keepalive_interval", "keepalive_count_max",
        "host_key_alias", "command", "env", "request_pty",
    }
)  # fmt: skip
# Options whose default reads nothing.
INERT = frozenset(
    {
        "self", "loop", "last_config", "reload", "canonical", "final", "client_factory",
        "client_version", "utf8_decode_errors", "x509_purposes", "login_timeout",
        "server_host_keys_handler", "disable_trivial_auth", "passphrase", "password",
        "subsystem", "term_type", "term_size", "term_modes", "x11_single_connection",
        "encoding", "errors", "window", "max_pktsize",
    }
)  # fmt: skip


def test_every_asyncssh_client_option_is_classified() -> None:
    # A new asyncssh option fails here until someone decides whether its default reads HOME.
    options = set(inspect.signature(asyncssh.SSHClientConnectionOptions.prepare).parameters)
    classified = SET_EXPLICITLY.keys() | GATED_BY.keys() | FROM_SSH_CONFIG | INERT
    assert options - classified == set()
    assert set(GATED_BY.values()) <= SET_EXPLICITLY.keys()


class Passed(Exception):
    """Stops a connection once what was passed to asyncssh is recorded."""


@pytest.fixture
def passed_to_asyncssh(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments asyncssh.connect and get_server_host_key are called with."""
    calls: list[dict[str, Any]] = []

    async def record(host: str, port: int, **kwargs: Any) -> None:
        calls.append(kwargs)
        raise Passed

    monkeypatch.setattr(asyncssh, "connect", record)
    monkeypatch.setattr(asyncssh, "get_server_host_key", record)
    return calls


async def test_no_option_that_reads_home_is_left_at_its_default(
    openssh: OpenSSHServer,
    passed_to_asyncssh: list[dict[str, Any]],
    client_key: asyncssh.SSHKey,
) -> None:
    pinned = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    # The key fetch first reads the server's hello itself: it needs a real server.
    with pytest.raises(Passed):
        await fetch_host_key(LOOPBACK, openssh.port, 5.0)
    with pytest.raises(Passed):
        await open_connection(loopback_settings(22, "root", client_key, pinned, 9))
    assert len(passed_to_asyncssh) == 2
    # The fetch names the host-key algorithms in the call: its own default would replace them.
    assert passed_to_asyncssh[0].pop("server_host_key_algs")[0] == "ssh-ed25519"
    for call in passed_to_asyncssh:
        # The call's own config default, (), would load ~/.ssh/config again.
        assert call.keys() == {"config", "options"}
        assert call["config"] is None
        given = call["options"].kwargs
        left_at_default = [name for name in SET_EXPLICITLY if name not in given]
        assert left_at_default == []
        assert [name for name, safe in SET_EXPLICITLY.items() if not safe(given[name])] == []
        assert [gate for gate in GATED_BY.values() if given[gate] not in (False, None)] == []
    tunnel = passed_to_asyncssh[1]["options"].kwargs
    assert tunnel["known_hosts"] == ([pinned], [], [])
    assert tunnel["server_host_key_algs"] == ["ssh-ed25519"]
    assert tunnel["client_keys"] == [client_key]


class FilesTouched:
    """Every file opened, directory listed and Unix socket connected to under `root`.

    An audit hook stays for the life of the process: it records only while `watching`.
    """

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.paths: list[str] = []
        self.watching = False

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.watching or event not in {"open", "os.listdir", "os.scandir", "socket.connect"}:
            return
        target = args[1] if event == "socket.connect" else args[0]
        if isinstance(target, str | bytes | os.PathLike):
            path = os.fsdecode(target)
            if path.startswith(self.root):
                self.paths.append(f"{event} {path}")

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[str]]:
        self.watching = True
        try:
            yield self.paths
        finally:
            self.watching = False


def fill_with_ssh_files(home: Path, client_key: asyncssh.SSHKey) -> None:
    """Everything ssh and asyncssh look for in a user's HOME, and in the environment."""
    ssh = home / ".ssh"
    (ssh / "config").write_text("Host *\n  IdentityFile ~/.ssh/id_ed25519\n  ForwardAgent yes\n")
    (ssh / "known_hosts").write_text("")
    client_key.write_private_key(ssh / "id_ed25519")
    client_key.write_public_key(ssh / "id_ed25519.pub")
    ca_key = asyncssh.generate_private_key("ssh-ed25519")
    ca_key.generate_x509_ca_certificate(ca_key, "CN=Home CA").write_certificate(
        ssh / "ca-bundle.crt", "pem"
    )
    (ssh / "crt").mkdir()
    (home / ".Xauthority").write_bytes(b"")


@pytest.fixture
def touched(scratch_home: Path, monkeypatch: pytest.MonkeyPatch) -> FilesTouched:
    recorder = FilesTouched(scratch_home)
    sys.addaudithook(recorder)
    for variable, value in {
        "SSH_AUTH_SOCK": scratch_home / "agent.sock",
        "DISPLAY": ":0",
        "XAUTHORITY": scratch_home / ".Xauthority",
        "KRB5CCNAME": f"FILE:{scratch_home / 'krb5cc'}",
    }.items():
        monkeypatch.setenv(variable, str(value))
    return recorder


async def test_a_connection_touches_no_file_in_home(
    openssh: OpenSSHServer,
    settings: TunnelSettings,
    scratch_home: Path,
    touched: FilesTouched,
    client_key: asyncssh.SSHKey,
) -> None:
    fill_with_ssh_files(scratch_home, client_key)
    # The recorder sees what asyncssh would read by default.
    with touched.watch() as paths:
        await asyncssh.SSHClientConnectionOptions.construct(client_keys=None, config=())
    assert any("ca-bundle.crt" in path for path in paths)
    paths.clear()

    with touched.watch() as paths:
        assert (await fetch_host_key(LOOPBACK, openssh.port, 5.0)).host_key == settings.host_key
        connection = await open_connection(settings)
        async with connection:
            await disable_server_nagle(connection)
            assert await round_trip_ms(connection) is not None
    assert paths == []
