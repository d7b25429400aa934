"""The options of every SSH connection we open: the pinned key and ours, nothing from HOME.

asyncssh fills each client option left at its default from the process's HOME, its environment
or ~/.ssh/config: known_hosts, id_* keys and their certificates, the agent (SSH_AUTH_SOCK), a
PKCS#11 provider, host-based authentication, and X.509 CAs from ~/.ssh/ca-bundle.crt and
~/.ssh/crt/, whose certificates it then accepts as host keys whatever key is pinned. Every such
option is set here, once, for both the host-key fetch and the tunnel's connection
(tests/test_client_options.py walks asyncssh's whole option list).
"""

from __future__ import annotations

from typing import Final

import asyncssh

# Each entry replaces a default that reads a file under HOME, the environment or ssh_config.
_NOTHING_FROM_HOME: Final[dict[str, object]] = {
    "config": None,  # ~/.ssh/config, which could set any other option
    "x509_trusted_certs": None,  # ~/.ssh/ca-bundle.crt; None also drops the x509v3-* algorithms
    "x509_trusted_cert_paths": [],  # ~/.ssh/crt/
    "client_certs": [],  # CertificateFile of ssh_config
    "ignore_encrypted": False,  # our key is an object, never a file to skip
    "agent_path": None,  # SSH_AUTH_SOCK or IdentityAgent
    "agent_identities": None,  # ~/.ssh/id_*.pub, to pick agent keys
    "agent_forwarding": False,
    "pkcs11_provider": None,
    "host_based_auth": False,  # the machine's own host keys
    "client_host_keysign": False,  # ssh-keysign and /etc/ssh/ssh_host_*_key
    "gss_kex": False,  # Kerberos: KRB5CCNAME and the credential cache
    "gss_auth": False,
    "gss_delegate_creds": False,
    "x11_forwarding": False,  # DISPLAY and ~/.Xauthority
    "send_env": None,  # would copy local environment variables to the server
}


def host_key_algs(pinned: asyncssh.SSHKey) -> list[str]:
    """The host-key algorithms of the pinned key alone: no certificate, no X.509 variant."""
    return [algorithm.decode("ascii") for algorithm in pinned.sig_algorithms]


async def client_options(
    *,
    pinned: asyncssh.SSHKey | None,
    client_key: asyncssh.SSHKey | None,
    username: str,
    **tuning: object,
) -> asyncssh.SSHClientConnectionOptions:
    """Options trusting `pinned` alone and offering `client_key` alone.

    `pinned` None: no key yet, as when fetching it; `client_key` None: no authentication.
    Pass `config=None` again to asyncssh.connect and get_server_host_key: their own default
    for it would load ~/.ssh/config.
    """
    trust: dict[str, object] = (
        {"known_hosts": ([pinned], [], []), "server_host_key_algs": host_key_algs(pinned)}
        if pinned is not None
        else {"known_hosts": None}
    )
    options: asyncssh.SSHClientConnectionOptions = (
        await asyncssh.SSHClientConnectionOptions.construct(
            **_NOTHING_FROM_HOME,
            **trust,
            username=username,
            client_keys=None if client_key is None else [client_key],
            **tuning,
        )
    )
    return options
