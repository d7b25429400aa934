"""A real OpenSSH server on a loopback port, with its own config, host key and authorized_keys."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from pathlib import Path

from .network import LOOPBACK
from .ssh_server import LoopbackSSHServer

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
_START_TIMEOUT = 10.0
_CLIENT_ALIVE_COUNT_MAX = 2

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
ClientAliveCountMax {client_alive_count_max}
LogLevel {log_level}
"""


class OpenSSHServer(LoopbackSSHServer):
    """sshd -D on 127.0.0.1, as the user running the tests."""

    software = "openssh"

    def __init__(self, directory: Path, authorized_keys: list[str]) -> None:
        super().__init__(directory, getpass.getuser())
        self.allow_forwarding = "yes"
        self.gateway_ports = "no"
        self.client_alive_interval = 2
        # DEBUG3 names every packet type sshd receives, at a cost in log size.
        self.log_level = "VERBOSE"
        # Appended to sshd_config: a `Match` block must come last.
        self.extra_config = ""
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
    def authorized_keys_path(self) -> Path:
        """AuthorizedKeysFile of the config: the directory's own."""
        return self.directory / "authorized_keys"

    @property
    def log_path(self) -> Path:
        """sshd -E writes here."""
        return self.directory / "sshd.log"

    @property
    def vanished_client_bound(self) -> float:
        """Measured with OpenSSH 9.2: about two intervals per check, count + 1 checks."""
        return 2 * self.client_alive_interval * (_CLIENT_ALIVE_COUNT_MAX + 1) + 2

    def forbid_remote_forwarding(self) -> None:
        """AllowTcpForwarding no, from the next start on."""
        self.allow_forwarding = "no"

    def replace_host_key(self) -> None:
        """A new host key, as a reinstalled or impersonated server has; used from the next start."""
        for path in (self.host_key_path, self.host_key_path.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key_path)],
            check=True,
        )

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
                client_alive_count_max=_CLIENT_ALIVE_COUNT_MAX,
                log_level=self.log_level,
            )
            + self.extra_config
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        # The log is kept across restarts: only what this start adds to it counts.
        logged_before = len(self.log)
        self._process = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(self.log_path)])
        self.wait_until_listening(logged_before)

    def wait_until_listening(self, logged_before: int) -> None:
        """Wait until sshd, started or reloaded (SIGHUP: it executes itself again), says that it
        listens in what its log gained after `logged_before` characters."""
        if self._process is None:
            raise RuntimeError("sshd is not running")
        deadline = time.monotonic() + _START_TIMEOUT
        while "Server listening" not in self.log[logged_before:]:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start:\n{self.log}")
            time.sleep(0.02)
