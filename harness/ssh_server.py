"""What the real SSH servers of the tests share: loopback port, authorized_keys, log, processes."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh

from .network import LOOPBACK, free_port
from .processes import process_tree, signal_tree


class LoopbackSSHServer(ABC):
    """A server process in the foreground; stop() takes down it and every session below it.

    Subclasses say where authorized_keys and the log are, and how the server starts.
    """

    # The software part of its version banner, in lower case.
    software = ""

    def __init__(self, directory: Path, user: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.user = user
        self._process: subprocess.Popen[bytes] | None = None

    @property
    @abstractmethod
    def authorized_keys_path(self) -> Path:
        """The file the server reads the client keys from."""

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """Where the server logs."""

    @property
    @abstractmethod
    def host_public_key(self) -> str:
        """The host key in OpenSSH public form, without its comment."""

    @property
    @abstractmethod
    def vanished_client_bound(self) -> float:
        """Seconds within which the server drops a client that stopped answering, and its ports."""

    @abstractmethod
    def start(self) -> None:
        """Start the server and wait until it accepts connections."""

    @abstractmethod
    def replace_host_key(self) -> None:
        """A new host key, as a reinstalled or impersonated server has; used from the next start."""

    @abstractmethod
    def forbid_remote_forwarding(self) -> None:
        """Refuse every remote forward from the next start on."""

    @property
    def log(self) -> str:
        """What the server logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def set_authorized_keys(self, lines: list[str]) -> None:
        """Replace the authorized_keys file; the server reads it at every login."""
        self.authorized_keys_path.write_text("".join(f"{line}\n" for line in lines))

    def add_authorized_key(self, line: str) -> None:
        """Append one line to authorized_keys, as `>> ~/.ssh/authorized_keys` does."""
        with self.authorized_keys_path.open("a") as keys:
            keys.write(f"{line}\n")

    def stop(self) -> None:
        """Kill the server and every session process, as a crashed server would end."""
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
            server_host_key_algs=["ssh-ed25519"],
            config=None,
            agent_path=None,
        ) as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def holding_remote_port(
        self, key: asyncssh.SSHKey, port: int
    ) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """Another session with `key` holding remote `port` on the server, as a stale one does."""
        async with self.connect(key) as session:
            await session.forward_remote_port("", port, LOOPBACK, 9)
            yield session

    def sessions(self) -> list[int]:
        """The pids of the per-connection processes below the server's own."""
        if self._process is None:
            return []
        return process_tree(self._process.pid)[1:]
