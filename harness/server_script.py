"""The server script in a test: a throwaway account, an sshd that reads its drop-ins, a run.

The script runs as root for real (the tests run as root): it creates accounts under /home and
writes authorized_keys there. Its paths point at a config of the test's own, and the account
has a name no other has, removed again when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import asyncssh

from .network import LOOPBACK
from .openssh import OpenSSHServer

# The script creates an account, writes files and runs sshd -t: a few seconds at most here.
_SCRIPT_TIMEOUT = 60.0
# A PATH without /usr/sbin: no useradd, so that a script meant to refuse a hostile name cannot
# create an account under it even if it failed to (Debian's useradd accepts "it's").
NO_USERADD = {"PATH": "/usr/bin:/bin"}
# The folders a root shell's PATH holds on Debian and Alpine: a PATH of links to their commands
# stands in for a server that lacks some of them.
_SYSTEM_BIN_FOLDERS = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
)
# What a forward is to: nothing needs to listen there for the server to grant the listener.
_TARGET_PORT = 9


@contextlib.contextmanager
def throwaway_account() -> Iterator[str]:
    """A name no account has; whatever account gets it meanwhile is removed, with its home."""
    name = f"schscript{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        if subprocess.run(["id", name], capture_output=True, check=False).returncode == 0:
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=True)


def create_account(name: str, shell: str) -> None:
    """The account as its owner made it before the script: a home, `shell`, and no password
    hash ('*', as a key-only login has; sshd without PAM refuses a locked '!')."""
    subprocess.run(
        ["useradd", "--create-home", "--password", "*", "--shell", shell, "--", name],
        capture_output=True,
        check=True,
    )


@contextlib.contextmanager
def folder_for_accounts() -> Iterator[Path]:
    """A temporary folder every account may reach, unlike pytest's tmp_path (root's alone): the
    script runs commands as the account, from a PATH a test puts there."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        yield Path(folder)


def path_without(commands: set[str], folder: Path) -> str:
    """A PATH of one `folder`, readable by every account, that links to every command of the
    system's PATH except `commands`: a server where those are not installed."""
    folder.mkdir(mode=0o755)
    for system_folder in map(Path, _SYSTEM_BIN_FOLDERS):
        if not system_folder.is_dir() or system_folder.is_symlink():
            continue  # merged /usr: /bin is a link to /usr/bin, already linked
        for command in system_folder.iterdir():
            link = folder / command.name
            if command.name not in commands and not link.exists(follow_symlinks=False):
                link.symlink_to(command)
    return str(folder)


def run_script(script: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Feed the script to sh as a paste into a root shell does, with `environment` added."""
    return run_script_in(["sh"], script, environment)


def run_script_in(
    shell: Sequence[str],
    script: str,
    environment: Mapping[str, str],
    timeout: float = _SCRIPT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Feed the script to the command `shell` (a root shell as a test prepares it: with files
    open, a keyring of its own...), with `environment` added; TimeoutExpired after `timeout`."""
    return subprocess.run(
        list(shell),
        input=script,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class DropInSSHServer(OpenSSHServer):
    """A real sshd whose config includes a drop-in folder, for one account.

    Its config names an authorized_keys file of its own for everybody: a Match block after the
    Include sends the account to its home's, where the script writes. The script's reload notes
    each call in a file instead of signalling: the test restarts the server when it needs to.
    """

    def __init__(self, directory: Path, account: str) -> None:
        super().__init__(directory, [])
        self.user = account
        self.drop_ins = directory / "sshd_config.d"
        self.drop_ins.mkdir()
        self.reloads = directory / "reloads"
        self.extra_config = (
            f"Include {self.drop_ins}/*.conf\n"
            f"Match User {account}\n"
            "    AuthorizedKeysFile .ssh/authorized_keys\n"
        )

    @property
    def script_environment(self) -> dict[str, str]:
        """The script's paths pointed at this server; its config exists once it has started."""
        return {
            "SSHD_CONFIG": str(self.directory / "sshd_config"),
            "SSHD_CONFIG_DIR": str(self.drop_ins),
            "SSHD_RELOAD": f"echo reloaded >> {self.reloads}",
        }

    @property
    def drop_in(self) -> Path:
        """The file the script writes the account's Match block to."""
        return self.drop_ins / f"ssh_callhome-{self.user}.conf"


async def forward_granted(server: OpenSSHServer, key: asyncssh.SSHKey, port: int) -> bool:
    """Whether the server, logged in to with `key`, grants a remote forward from `port`."""
    async with server.connect(key) as connection:
        try:
            listener = await connection.forward_remote_port(LOOPBACK, port, LOOPBACK, _TARGET_PORT)
        except asyncssh.ChannelListenError:
            return False
        listener.close()
        return True


def key_blob(text: str) -> str:
    """The key itself (base64) of an authorized_keys line or a public key."""
    return next(word for word in text.split() if word.startswith("AAAA"))
