"""A real OpenSSH server on a loopback port, with its own config, host key and authorized_keys."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh

from .network import LOOPBACK, free_port
from .processes import process_tree, signal_tree

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
_START_TIMEOUT = 10.0

_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {directory}/ssh_host_ed25519_key
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
# /tmp is world-writable: sshd would refuse the files under it otherwise.
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding {allow_forwarding}
GatewayPorts {gateway_ports}
ClientAliveInterval {client_alive_interval}
ClientAliveCountMax 2
LogLevel {log_level}
"""


class OpenSSHServer:
    """sshd -D on 127.0.0.1; stop() takes down the master and every session below it."""

    def __init__(self, directory: Path, authorized_keys: list[str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.user = getpass.getuser()
        self.allow_forwarding = "yes"
        self.gateway_ports = "no"
        self.client_alive_interval = 2
        # DEBUG3 names every packet type sshd receives, at a cost in log size.
        self.log_level = "VERBOSE"
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.replace_host_key()
        self.set_authorized_keys(authorized_keys)

    @property
    def host_key_path(self) -> Path:
        """The private host key; its .pub is what clients must pin."""
        return self.directory / "ssh_host_ed25519_key"

    @property
    def host_public_key(self) -> str:
        """The host key in OpenSSH public form, without its comment."""
        algorithm, key, *_comment = self.host_key_path.with_suffix(".pub").read_text().split()
        return f"{algorithm} {key}"

    @property
    def log(self) -> str:
        """What sshd logged so far."""
        path = self.directory / "sshd.log"
        return path.read_text() if path.exists() else ""

    def replace_host_key(self) -> None:
        """A new host key, as a reinstalled or impersonated server has; used from the next start."""
        for path in (self.host_key_path, self.host_key_path.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key_path)],
            check=True,
        )

    def set_authorized_keys(self, lines: list[str]) -> None:
        """Replace the authorized_keys file; sshd reads it at every login."""
        (self.directory / "authorized_keys").write_text("".join(f"{line}\n" for line in lines))

    def add_authorized_key(self, line: str) -> None:
        """Append one line to authorized_keys, as `>> ~/.ssh/authorized_keys` does."""
        with (self.directory / "authorized_keys").open("a") as keys:
            keys.write(f"{line}\n")

    def start(self) -> None:
        """Start sshd and wait until it accepts connections."""
        config = self.directory / "sshd_config"
        config.write_text(
            _CONFIG.format(
                port=self.port,
                address=LOOPBACK,
                directory=self.directory,
                allow_forwarding=self.allow_forwarding,
                gateway_ports=self.gateway_ports,
                client_alive_interval=self.client_alive_interval,
                log_level=self.log_level,
            )
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        # The log is kept across restarts: only what this start adds to it counts.
        logged_before = len(self.log)
        self._process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.directory / "sshd.log")]
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while "Server listening" not in self.log[logged_before:]:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start:\n{self.log}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the master and every session process, as a crashed server would end."""
        if self._process is None:
            return
        signal_tree(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=5)
        self._process = None

    @contextlib.asynccontextmanager
    async def connect(self, key: asyncssh.SSHKey) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """Another client session with `key`, trusting any host key: the tests' own tool."""
        async with asyncssh.connect(
            LOOPBACK,
            self.port,
            username=self.user,
            client_keys=[key],
            known_hosts=None,
            config=None,
            agent_path=None,
        ) as connection:
            yield connection

    def sessions(self) -> list[int]:
        """The pids of the per-connection processes below the master."""
        if self._process is None:
            return []
        return process_tree(self._process.pid)[1:]
