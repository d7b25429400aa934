"""A real Dropbear server on a loopback port, with its own host key and a throwaway account.

Dropbear reads authorized_keys only from the home directory of the account in the system's
user database, and has no option to read it from elsewhere. So the helper creates an account of
its own, with a home of its own, and removes both again in close(): the tests never touch a real
account's ~/.ssh. The home lies directly in the temp directory: Dropbear reads authorized_keys as
that account, which cannot enter pytest's private directories.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .network import LOOPBACK
from .ssh_server import LoopbackSSHServer

DROPBEAR = shutil.which("dropbear") or "/usr/sbin/dropbear"
_START_TIMEOUT = 10.0


def _create_account(home: Path, shell: str) -> str:
    """A locked account (no password) with its home at `home`."""
    name = f"schtest{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", shell, name],
        check=True,
    )
    return name


class DropbearServer(LoopbackSSHServer):
    """dropbear -F on 127.0.0.1 for a throwaway account; call close() to remove the account."""

    software = "dropbear"

    def __init__(self, directory: Path, authorized_keys: list[str], shell: str = "/bin/sh") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        home = self.home = Path(tempfile.mkdtemp(prefix="ssh_callhome-dropbear-"))
        (home / ".ssh").mkdir()
        try:
            user = _create_account(home, shell)
        except BaseException:
            shutil.rmtree(home)
            raise
        super().__init__(directory, user)
        # -k: no remote forwarding for anyone, Dropbear's AllowTcpForwarding no.
        self.allow_remote_forwarding = True
        # -K: seconds between the server's keepalives; it drops a client after three unanswered.
        self.keepalive_interval = 2
        try:
            # Dropbear checks that home, ~/.ssh and authorized_keys belong to the user (or
            # root) and that nobody else may write them.
            for path in (home, home / ".ssh"):
                shutil.chown(path, self.user)
                path.chmod(0o700)
            self.replace_host_key()
            self.set_authorized_keys(authorized_keys)
        except BaseException:
            self.close()
            raise

    @property
    def authorized_keys_path(self) -> Path:
        """~/.ssh/authorized_keys of the throwaway account."""
        return self.home / ".ssh" / "authorized_keys"

    @property
    def log_path(self) -> Path:
        """Dropbear's stderr (-E), across restarts."""
        return self.directory / "dropbear.log"

    @property
    def host_key_path(self) -> Path:
        """The host key in Dropbear's own format."""
        return self.directory / "dropbear_ed25519_host_key"

    @property
    def host_public_key(self) -> str:
        """`dropbearkey -y` prints the public half among other lines."""
        output = subprocess.run(
            ["dropbearkey", "-y", "-f", str(self.host_key_path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        line = next(line for line in output.splitlines() if line.startswith("ssh-"))
        algorithm, key, *_comment = line.split()
        return f"{algorithm} {key}"

    @property
    def vanished_client_bound(self) -> float:
        """Three unanswered keepalives, one interval apart."""
        return 3 * self.keepalive_interval + 2

    def forbid_remote_forwarding(self) -> None:
        """-k, from the next start on."""
        self.allow_remote_forwarding = False

    def replace_host_key(self) -> None:
        """A new ed25519 host key, the only one: used from the next start."""
        self.host_key_path.unlink(missing_ok=True)
        subprocess.run(
            ["dropbearkey", "-t", "ed25519", "-f", str(self.host_key_path)],
            check=True,
            capture_output=True,
        )

    def set_authorized_keys(self, lines: list[str]) -> None:
        """Replace ~/.ssh/authorized_keys; it must belong to the account and be private."""
        super().set_authorized_keys(lines)
        shutil.chown(self.authorized_keys_path, self.user)
        self.authorized_keys_path.chmod(0o600)

    def start(self) -> None:
        """Start dropbear in the foreground and wait until its port accepts connections."""
        command = [
            DROPBEAR,
            "-F",
            "-E",
            "-s",
            "-p",
            f"{LOOPBACK}:{self.port}",
            "-r",
            str(self.host_key_path),
            "-P",
            str(self.directory / "dropbear.pid"),
            "-K",
            str(self.keepalive_interval),
        ]
        if not self.allow_remote_forwarding:
            command.append("-k")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stderr=log)
        deadline = time.monotonic() + _START_TIMEOUT
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dropbear did not start:\n{self.log}")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the server and remove its account and home."""
        self.stop()
        subprocess.run(["userdel", self.user], check=True, capture_output=True)
        shutil.rmtree(self.home)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0
