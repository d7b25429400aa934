"""Reading keys. Import is CPU-heavy (bcrypt, RSA): callers run it in an executor."""

from __future__ import annotations

from collections.abc import Sequence

import asyncssh
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from .server_hello import ServerSoftware

# Any passphrase at all: used only to learn whether a key that failed to load is encrypted.
_PROBE_PASSPHRASE = "probe"  # noqa: S105 - not a secret, never matches a real one by design


class KeyProblem(Exception):
    """A private key that cannot be used; the subclass says why. Never carries key material."""


class InvalidKey(KeyProblem):
    """Not a private key in a format we read (or its line breaks were lost)."""


class WrongPassphrase(KeyProblem):
    """The key is encrypted and the passphrase is missing or wrong."""


class WeakKey(KeyProblem):
    """DSA, or RSA shorter than 2048 bits: OpenSSH refuses them, and so do we."""


MIN_RSA_BITS = 2048


def load_private_key(text: str, passphrase: str | None) -> asyncssh.SSHKey:
    """Import an OpenSSH or PEM private key; blocking."""
    # Text that is not even UTF-8 (a lone surrogate) is neither a key nor its passphrase.
    try:
        data = text.strip().encode() + b"\n"
    except UnicodeEncodeError:
        raise InvalidKey from None
    try:
        secret = passphrase.encode() if passphrase else None
    except UnicodeEncodeError:
        raise WrongPassphrase from None
    try:
        key = asyncssh.import_private_key(data, secret)
    except asyncssh.KeyEncryptionError:
        raise WrongPassphrase from None
    except asyncssh.KeyImportError:
        # asyncssh reports a missing passphrase, and a wrong one for PEM, as an import error.
        if _is_encrypted(data):
            raise WrongPassphrase from None
        raise InvalidKey from None
    if _is_weak(key):
        raise WeakKey
    return key


def _is_weak(key: asyncssh.SSHKey) -> bool:
    pyca_key = key.pyca_key
    if isinstance(pyca_key, dsa.DSAPrivateKey):
        return True
    return isinstance(pyca_key, rsa.RSAPrivateKey) and pyca_key.key_size < MIN_RSA_BITS


def generate_private_key() -> str:
    """A new ed25519 key in OpenSSH format, without passphrase (the entry stores it)."""
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


def listen_spec(bind_address: str, remote_port: int) -> str:
    """A remote forward as permitlisten and PermitListen write it; a bare port means any address.

    OpenSSH matches a bare port whatever address the client asks for.
    """
    return f"{bind_address}:{remote_port}" if bind_address else str(remote_port)


def authorized_keys_line(
    key: asyncssh.SSHKey,
    bind_address: str,
    remote_ports: Sequence[int],
    comment: str,
    software: ServerSoftware = ServerSoftware.OPENSSH,
) -> str:
    """The key's public half, restricted to what the tunnel needs, in the server's own options.

    `remote_ports` are the tunnel's port first, then its extra forwards' ports. `permitopen`
    narrows local forwards to the tunnel's own port on the server (the public-path check), and
    the forced `command` makes any shell or command request run /bin/false instead.

    OpenSSH: `restrict` forbids ptys, agent, X11 and all forwarding; `port-forwarding` allows
    forwarding again, and one `permitlisten` per port narrows remote forwards to those ports.
    `port-forwarding` also allows Unix-socket forwarding, which no key option can forbid: the
    server's `AllowStreamLocalForwarding no` does (see server_setup.py).

    Dropbear rejects the whole key for options it does not know (restrict, port-forwarding,
    permitlisten): its line forbids ptys, agent and X11 one by one, and cannot narrow remote
    forwards at all.
    """
    if software is ServerSoftware.DROPBEAR:
        limits = ["no-pty", "no-agent-forwarding", "no-X11-forwarding"]
    else:
        limits = ["restrict", "port-forwarding"]
        limits += [f'permitlisten="{listen_spec(bind_address, port)}"' for port in remote_ports]
    options = ",".join(
        (*limits, f'permitopen="127.0.0.1:{remote_ports[0]}"', 'command="/bin/false"')
    )
    return f"{options} {export_host_key(key)} {comment}"


def _is_encrypted(data: bytes) -> bool:
    # PEM marks encryption in its armour ("BEGIN ENCRYPTED PRIVATE KEY", "Proc-Type: 4,ENCRYPTED").
    if b"ENCRYPTED" in data:
        return True
    # The OpenSSH format does not: a passphrase that fails to decrypt tells.
    try:
        asyncssh.import_private_key(data, _PROBE_PASSPHRASE)
    except asyncssh.KeyEncryptionError:
        return True
    except asyncssh.KeyImportError:
        return False
    return False  # pragma: no cover - an unencrypted key would have loaded the first time


def load_host_key(text: str) -> asyncssh.SSHKey:
    """The pinned server key, stored in OpenSSH public-key form."""
    return asyncssh.import_public_key(text)


def export_host_key(key: asyncssh.SSHKey) -> str:
    """The form in which a server key is stored in the entry: algorithm and key, no comment."""
    algorithm, blob, *_comment = key.export_public_key("openssh").decode().split()
    return f"{algorithm} {blob}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    """SHA256:... as `ssh-keygen -lf` prints it."""
    return key.get_fingerprint("sha256")
