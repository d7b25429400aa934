"""The server script's dealings with the SSH server itself, run for real as root: OpenSSH's
drop-in folder, what sshd's effective settings for the account say and its reload, and the
shells Dropbear accepts."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import setup_script
from custom_components.ssh_callhome.engine.server_setup import server_settings
from harness.engine import server_settings as tunnel_settings
from harness.network import LOOPBACK, free_port
from harness.server_script import (
    DropInSSHServer,
    create_account,
    folder_for_accounts,
    path_without,
    run_script,
    throwaway_account,
)
from harness.server_script_run import drop_in_sshd_for_a_new_account

_COMMENT = "ssh_callhome@sshd_side"
# What reloads sshd on Debian (systemd), Alpine (OpenRC) and SysV-style servers: none of them on
# the server of these tests, as on a container that runs sshd alone.
_SERVICE_MANAGERS = {"systemctl", "rc-service", "service"}
# A signal is delivered within microseconds of kill(); a process it ends is gone well within this.
_SIGNAL_BOUND = 2.0


def _script(key: asyncssh.SSHKey, account: str, ports: list[int]) -> str:
    """The OpenSSH script the flow shows for `account` and `ports`, loopback only."""
    line = authorized_keys_line(key, LOOPBACK, ports, _COMMENT, ServerSoftware.OPENSSH)
    block = server_settings(ServerSoftware.OPENSSH, account, LOOPBACK, ports)
    return setup_script(ServerSoftware.OPENSSH, account, key, line, block)


@pytest.fixture
def drop_in_sshd(socket_enabled: None, tmp_path: Path) -> Iterator[DropInSSHServer]:
    with drop_in_sshd_for_a_new_account(tmp_path / "sshd") as server:
        yield server


async def test_a_missing_folder_the_config_includes_is_created_for_the_block(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    shutil.rmtree(drop_in_sshd.drop_ins)  # sshd, already running, took the Include as it was
    settings = tunnel_settings(drop_in_sshd, client_key, free_port())
    script = _script(client_key, drop_in_sshd.user, [settings.remote_port])

    result = run_script(script, **drop_in_sshd.script_environment)

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert f"{drop_in_sshd.drop_ins}: created, owner root and mode 755" in result.stdout
    folder = drop_in_sshd.drop_ins.stat()
    assert (folder.st_uid, folder.st_gid, folder.st_mode & 0o7777) == (0, 0, 0o755)
    assert drop_in_sshd.drop_in.exists()
    drop_in_sshd.stop()  # started again as the reload would: with the drop-in in force
    drop_in_sshd.start()
    await check_tunnel(settings)


def test_a_folder_the_script_created_goes_again_when_sshd_refuses_the_config(
    client_key: asyncssh.SSHKey, tmp_path: Path
) -> None:
    folder = tmp_path / "sshd_config.d"
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {folder}/*.conf\nNoSuchKeyword yes\n")
    reloads = tmp_path / "reloads"
    with throwaway_account() as account:
        script = _script(client_key, account, [8123])
        result = run_script(
            script,
            SSHD_CONFIG=str(config),
            SSHD_CONFIG_DIR=str(folder),
            SSHD_RELOAD=f"echo reloaded >> {reloads}",
        )
        print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 1
    assert "sshd -t refuses the configuration with the new block" in result.stderr
    assert not folder.exists()
    assert not reloads.exists()


# What an earlier drop-in (read before the script's, as `00-` sorts first) sets to keep the
# account, its key or its forward out; {account} is the account's name, and its group's.
_KEEPING_OUT = {
    "DenyUsers": "DenyUsers root {account}\n",
    "DenyGroups": "DenyGroups {account}\n",
    "AllowGroups": "AllowGroups root\n",
    "PubkeyAuthentication": "Match User {account}\n    PubkeyAuthentication no\n",
    "AllowTcpForwarding": "Match all\n    AllowTcpForwarding local\n",
}
# Settings that name the account, or its keys file, in ways the script must read as sshd does.
_LETTING_IN = {
    "AllowUsers pattern, host part": "AllowUsers root schscript*@127.0.0.1\n",
    "AllowGroups, the account's own": "AllowGroups root {account}\n",
    "DenyUsers, others": "DenyUsers root schscript\n",
    "AuthorizedKeysFile tokens": "Match User {account}\n"
    "    AuthorizedKeysFile /etc/nowhere/%u %h/.ssh/authorized_keys\n",
}


def _harden(server: DropInSSHServer, settings: str) -> Path:
    """`settings` in a drop-in read before the script's; the file."""
    hardening = server.drop_ins / "00-hardening.conf"
    hardening.write_text(settings.format(account=server.user))
    return hardening


@pytest.mark.parametrize("keyword", list(_KEEPING_OUT))
def test_settings_that_keep_the_tunnel_out_are_named_and_the_block_goes_again(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, keyword: str
) -> None:
    hardening = _harden(drop_in_sshd, _KEEPING_OUT[keyword])
    script = _script(client_key, drop_in_sshd.user, [free_port()])

    result = run_script(script, **drop_in_sshd.script_environment)

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 1
    assert f"sshd's {keyword} " in result.stderr
    assert f"{drop_in_sshd.drop_in} is back as it was, sshd not reloaded" in result.stderr
    assert sorted(drop_in_sshd.drop_ins.iterdir()) == [hardening]
    assert not drop_in_sshd.reloads.exists()


@pytest.mark.parametrize("settings", list(_LETTING_IN))
async def test_settings_that_let_the_tunnel_in_are_read_as_sshd_reads_them(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey, settings: str
) -> None:
    _harden(drop_in_sshd, _LETTING_IN[settings])
    tunnel = tunnel_settings(drop_in_sshd, client_key, free_port())
    script = _script(client_key, drop_in_sshd.user, [tunnel.remote_port])

    result = run_script(script, **drop_in_sshd.script_environment)

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stdout
    drop_in_sshd.stop()  # started again as the reload would: with the drop-in in force
    drop_in_sshd.start()
    await check_tunnel(tunnel)


def test_a_run_again_names_what_keeps_the_tunnel_out_now_and_changes_nothing(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    script = _script(client_key, drop_in_sshd.user, [free_port()])
    first = run_script(script, **drop_in_sshd.script_environment)
    assert first.returncode == 0, first.stderr
    written = drop_in_sshd.drop_in.read_text()
    _harden(drop_in_sshd, _KEEPING_OUT["DenyUsers"])

    again = run_script(script, **drop_in_sshd.script_environment)

    print(again.returncode, again.stdout, again.stderr)
    assert again.returncode == 1
    assert f"sshd's DenyUsers keeps {drop_in_sshd.user} out" in again.stderr
    assert "Nothing changed in sshd" in again.stderr
    assert drop_in_sshd.drop_in.read_text() == written
    assert drop_in_sshd.reloads.read_text() == "reloaded\n"


def _without_service_managers(server: DropInSSHServer, folder: Path) -> dict[str, str]:
    """The script's environment for `server` on a server with no service manager: the script
    reloads sshd as it finds fit."""
    environment = server.script_environment
    del environment["SSHD_RELOAD"]
    return {**environment, "PATH": path_without(_SERVICE_MANAGERS, folder / "bin")}


async def test_without_a_service_manager_sshd_is_reloaded_through_its_pidfile(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    tunnel = tunnel_settings(drop_in_sshd, client_key, free_port())
    script = _script(client_key, drop_in_sshd.user, [tunnel.remote_port])
    logged_before = len(drop_in_sshd.log)
    with folder_for_accounts() as folder:
        result = run_script(script, **_without_service_managers(drop_in_sshd, folder))

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "sshd reloaded" in result.stdout
    drop_in_sshd.wait_until_listening(logged_before)  # sshd executes itself again on SIGHUP
    assert "Received SIGHUP" in drop_in_sshd.log[logged_before:]
    await check_tunnel(tunnel)  # the reloaded sshd has the block, never restarted by the test


def test_with_nothing_to_reload_sshd_the_script_says_what_to_run_and_keeps_the_block(
    drop_in_sshd: DropInSSHServer, client_key: asyncssh.SSHKey
) -> None:
    script = _script(client_key, drop_in_sshd.user, [free_port()])
    logged_before = len(drop_in_sshd.log)
    pid_file = drop_in_sshd.directory / "sshd.pid"
    with (
        subprocess.Popen(["sleep", "60"]) as other,  # a stale PidFile's pid, reused
        folder_for_accounts() as folder,
    ):
        pid_file.write_text(f"{other.pid}\n")
        try:
            result = run_script(script, **_without_service_managers(drop_in_sshd, folder))
            with pytest.raises(subprocess.TimeoutExpired):
                other.wait(timeout=_SIGNAL_BOUND)
        finally:
            other.kill()

    print(result.returncode, result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "WARNING: sshd not reloaded" in result.stdout
    assert "run: kill -HUP $(pgrep -o -x sshd)" in result.stdout
    assert drop_in_sshd.drop_in.exists()
    assert "SIGHUP" not in drop_in_sshd.log[logged_before:]


# Shells Debian's /etc/shells does not list: nologin as Debian ships it, and one a directory
# account chose (its passwd entry is the directory's), with the command it hopes root copies
# from the script's advice.
_UNLISTED_SHELLS = {
    "nologin": "/usr/sbin/nologin",
    "hostile": "/usr/sbin/nologin;touch /tmp/ssh_callhome_pwned",
}


@pytest.mark.parametrize("kind", list(_UNLISTED_SHELLS))
def test_an_account_whose_shell_etc_shells_leaves_out_gets_no_key_for_dropbear(
    client_key: asyncssh.SSHKey, kind: str
) -> None:
    shell = _UNLISTED_SHELLS[kind]
    assert shell not in Path("/etc/shells").read_text().split(), "the test proves nothing"
    with throwaway_account() as account:
        create_account(account, shell)
        line = authorized_keys_line(client_key, "", [8123], _COMMENT, ServerSoftware.DROPBEAR)
        flags = server_settings(ServerSoftware.DROPBEAR, account, "", [8123])
        script = setup_script(ServerSoftware.DROPBEAR, account, client_key, line, flags)

        result = run_script(script)

        print(result.returncode, result.stdout, result.stderr)
        assert not (Path(pwd.getpwnam(account).pw_dir) / ".ssh").exists()
    assert result.returncode == 1
    assert f"Dropbear refuses {account}: /etc/shells does not list its shell" in result.stderr
    if kind == "nologin":
        assert f"echo {shell} >> /etc/shells" in result.stderr
    else:
        assert shell not in result.stderr
