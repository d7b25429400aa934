"""One run of the server script as the attack tests make it: the OpenSSH script for a throwaway
account, a config that only prints the Match block or a real sshd with a drop-in folder, and
stand-in commands on the PATH for the code an account or a directory runs.

What each test states is then only its own: the stand-in, the root shell, what it asserts.
"""

from __future__ import annotations

import contextlib
import pwd
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import asyncssh

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings

from .engine import server_settings as tunnel_settings
from .network import LOOPBACK, free_port
from .server_script import (
    DropInSSHServer,
    create_account,
    path_without,
    run_script,
    run_script_in,
    throwaway_account,
)

# Home Assistant's usual port: where no tunnel connects, any port does for the script's lines.
_ANY_PORTS = (8123,)
# The script's last word on success, once the account's step has run.
INSTALLED = "key line of this tunnel installed"
# How the script writes as the account, in the order it tries them: hiding the ones before a
# runner makes the script use that one.
RUNNERS = ("setpriv", "runuser", "su")
# The login shell of an account that only holds the tunnel's key (Debian's).
NO_LOGIN = "/usr/sbin/nologin"
# A root shell's PATH on Debian, behind a test's stand-ins.
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Where a test's stand-in commands sit, before the system's on the PATH.
_STAND_INS = "probe"
# What is shown of sshd's log after a tunnel's check: its end, where a refusal is logged.
_LOG_TAIL = 4000


def openssh_script(
    key: asyncssh.SSHKey, account: str, comment: str, ports: Sequence[int] = _ANY_PORTS
) -> str:
    """The OpenSSH script the flow shows for `account`, `ports` and `key`, loopback only."""
    line = authorized_keys_line(key, LOOPBACK, list(ports), comment, ServerSoftware.OPENSSH)
    block = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, list(ports))
    return setup_script(ServerSoftware.OPENSSH, account, key, line, block)


def print_only_config(folder: Path) -> dict[str, str]:
    """The script's sshd paths for a config in `folder` without an Include: the script then
    only prints the Match block, and a test needs no sshd."""
    config = folder / "sshd_config"
    config.write_text("Port 22\n")
    return {"SSHD_CONFIG": str(config), "SSHD_CONFIG_DIR": str(folder)}


def stand_in(folder: Path, command: str, text: str) -> Path:
    """`command` in `folder` (made readable by every account), running the shell script
    `text`: what an account's injected code or a directory's answer does, found first."""
    folder.mkdir(mode=0o755, exist_ok=True)
    path = folder / command
    path.write_text(text)
    path.chmod(0o755)
    return path


def step_path(accounts_folder: Path, runner: str, mktemp: str) -> str:
    """A PATH on which the script writes as the account with `runner` and the account's step
    runs the stand-in `mktemp` (whose text ends by running the real one): the account's code."""
    probe = accounts_folder / _STAND_INS
    stand_in(probe, "mktemp", mktemp)
    hidden = set(RUNNERS[: RUNNERS.index(runner)])
    return f"{probe}:{path_without(hidden, accounts_folder / 'bin')}"


@contextlib.contextmanager
def no_login_account(shell: str = NO_LOGIN) -> Iterator[str]:
    """A throwaway account that exists before the script, with `shell`; removed afterwards."""
    with throwaway_account() as name:
        create_account(name, shell)
        yield name


@contextlib.contextmanager
def running_drop_in_sshd(directory: Path, account: str) -> Iterator[DropInSSHServer]:
    """A real sshd, started, whose config includes its drop-in folder, for `account`."""
    server = DropInSSHServer(directory, account)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def drop_in_sshd_for_a_new_account(directory: Path) -> Iterator[DropInSSHServer]:
    """A real sshd, started, whose config includes its drop-in folder, for a throwaway account
    that the script creates."""
    with throwaway_account() as account, running_drop_in_sshd(directory, account) as server:
        yield server


async def installed_means_logs_in(
    server: DropInSSHServer,
    key: asyncssh.SSHKey,
    comment: str,
    before_reload: Callable[[], None] | None = None,
    **environment: str,
) -> None:
    """The script's promise to OpenSSH: run for `server`'s account (with `environment` added to
    the server's paths), a refusal is fine, but a success (exit 0) must be a key that logs in
    and gets its forward once sshd has reloaded, after `before_reload` (time passing...)."""
    settings = tunnel_settings(server, key, free_port())
    script = openssh_script(key, server.user, comment, [settings.remote_port])
    result = run_script(script, **server.script_environment, **environment)
    print(result.returncode, result.stdout, result.stderr)
    if result.returncode != 0:  # a refusal is fine; a success must be one
        return
    if before_reload is not None:
        before_reload()
    server.stop()  # started again as the reload would: with the drop-in in force
    server.start()
    try:
        await check_tunnel(settings)
    finally:
        print(server.log_path.read_text()[-_LOG_TAIL:])


def stand_ins_first(folder: Path) -> str:
    """A PATH with `folder`'s stand-ins first, then a root shell's on Debian."""
    return f"{folder}:{_SYSTEM_PATH}"


def run_printing_only(
    script: str, folder: Path, shell: Sequence[str] = ("sh",), **environment: str
) -> subprocess.CompletedProcess[str]:
    """The script fed to the root shell `shell` with `environment` added and a config in
    `folder` that only prints the Match block; its output printed as repr, for what a hostile
    account or directory wrote may hold control characters, shown then and not acted on."""
    result = run_script_in(shell, script, {**environment, **print_only_config(folder)})
    print(result.returncode, repr(result.stdout), repr(result.stderr))
    return result


def left_in_home(account: str, name: str) -> str:
    """What the account's code left in the file `name` of its home, printed."""
    text = (Path(pwd.getpwnam(account).pw_dir) / name).read_text()
    print(text)
    return text


@contextlib.contextmanager
def account_code_run(
    key: asyncssh.SSHKey,
    comment: str,
    accounts_folder: Path,
    runner: str,
    mktemp: str,
    config_folder: Path,
    root_shell: Sequence[str] = ("sh",),
    **environment: str,
) -> Iterator[tuple[str, subprocess.CompletedProcess[str]]]:
    """The script fed to `root_shell` for a no-login account, written as with `runner`, its
    step running the stand-in `mktemp`: the account's injected code. The account's name and
    the result, printed; the account exists until the block ends, for what its code left."""
    path = step_path(accounts_folder, runner, mktemp)
    with no_login_account() as name:
        script = openssh_script(key, name, comment)
        yield name, run_printing_only(script, config_folder, root_shell, PATH=path, **environment)
