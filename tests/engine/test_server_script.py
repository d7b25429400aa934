"""The server script, run for real: as root, against a real sshd and Dropbear, on a throwaway
account and config, and with hostile values."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from custom_components.ssh_callhome.engine.connection import check_tunnel
from custom_components.ssh_callhome.engine.keys import authorized_keys_line
from custom_components.ssh_callhome.engine.server_hello import ServerSoftware
from custom_components.ssh_callhome.engine.server_script import (
    UnsafeScriptValue,
    server_script,
    shell_quote,
)
from custom_components.ssh_callhome.engine.server_setup import openssh_match_block
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from harness.dropbear import DropbearServer
from harness.engine import server_settings
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer

# The script creates an account, writes files and runs sshd -t: a few seconds at most here.
_SCRIPT_TIMEOUT = 60.0
_COMMENT = "ssh_callhome@test_home"
# Values a user name or a comment could smuggle into a shell, one of each kind.
_HOSTILE = (
    "it's",
    "$(touch {marker})",
    "`touch {marker}`",
    "a;touch {marker}",
    "a\ntouch {marker}",
    "a'$(touch {marker})'",
    "a,root",
    "*",
    "-oProxyCommand=x",
    ".hidden",
)


def run_script(script: str, **paths: str) -> subprocess.CompletedProcess[str]:
    """Feed the script to sh as a paste into a root shell does, the paths in its environment."""
    return subprocess.run(
        ["sh"],
        input=script,
        env={**os.environ, **paths},
        capture_output=True,
        text=True,
        timeout=_SCRIPT_TIMEOUT,
        check=False,
    )


def openssh_script(key: asyncssh.SSHKey, account: str, settings: TunnelSettings) -> str:
    """The script the flow shows for this tunnel's settings on OpenSSH."""
    return server_script(
        key, ServerSoftware.OPENSSH, account, LOOPBACK, [settings.remote_port], _COMMENT
    )


def file_states(*paths: Path) -> list[tuple[int, int, int, float, bytes]]:
    """Owner, group, mode, modification time and a file's content: what a run must leave alone."""
    states = []
    for path in paths:
        status = path.stat()
        content = path.read_bytes() if path.is_file() else b""
        states.append((status.st_uid, status.st_gid, status.st_mode, status.st_mtime, content))
    return states


@pytest.fixture
def throwaway_account() -> Iterator[str]:
    """A name no account has; whatever account the script creates under it is removed after."""
    name = f"schscript{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        if subprocess.run(["id", name], capture_output=True, check=False).returncode == 0:
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=True)


@pytest.fixture
def drop_ins(tmp_path: Path) -> Path:
    """The throwaway config's drop-in folder."""
    folder = tmp_path / "sshd_config.d"
    folder.mkdir()
    return folder


@pytest.fixture
def script_sshd(
    socket_enabled: None, tmp_path: Path, throwaway_account: str, drop_ins: Path
) -> Iterator[OpenSSHServer]:
    """A real sshd whose config includes the drop-in folder, for the throwaway account.

    Its config names an authorized_keys file of its own for everybody: a Match block after the
    Include sends the throwaway account to its home's, where the script writes.
    """
    server = OpenSSHServer(tmp_path / "sshd", [])
    server.user = throwaway_account
    server.extra_config = (
        f"Include {drop_ins}/*.conf\n"
        f"Match User {throwaway_account}\n"
        "    AuthorizedKeysFile .ssh/authorized_keys\n"
    )
    server.start()  # writes the config the script is pointed at
    yield server
    server.stop()


def script_paths(server: OpenSSHServer, drop_ins: Path, reloads: Path) -> dict[str, str]:
    """The script's paths pointed at the test's sshd; its reload notes each call in `reloads`."""
    return {
        "SSHD_CONFIG": str(server.directory / "sshd_config"),
        "SSHD_CONFIG_DIR": str(drop_ins),
        "SSHD_RELOAD": f"echo reloaded >> {reloads}",
    }


async def test_the_script_prepares_openssh_for_the_tunnel_and_nothing_else(
    script_sshd: OpenSSHServer, client_key: asyncssh.SSHKey, drop_ins: Path, tmp_path: Path
) -> None:
    account = script_sshd.user
    settings = server_settings(script_sshd, client_key, free_port())
    script = openssh_script(client_key, account, settings)
    reloads = tmp_path / "reloads"
    paths = script_paths(script_sshd, drop_ins, reloads)

    first = run_script(script, **paths)
    print(first.stdout, first.stderr)
    assert first.returncode == 0, first.stderr
    assert f"account {account}: created" in first.stdout
    assert "sshd reloaded" in first.stdout
    assert reloads.read_text() == "reloaded\n"
    home = Path(f"/home/{account}")
    keys = home / ".ssh" / "authorized_keys"
    line = authorized_keys_line(client_key, LOOPBACK, [settings.remote_port], _COMMENT)
    assert keys.read_text() == f"{line}\n"
    uid = int(subprocess.check_output(["id", "-u", account]))
    assert (keys.stat().st_uid, keys.stat().st_mode & 0o777) == (uid, 0o600)
    assert (keys.parent.stat().st_uid, keys.parent.stat().st_mode & 0o777) == (uid, 0o700)
    entry = subprocess.check_output(["getent", "shadow", account], text=True)
    assert entry.split(":")[1] == "*"  # no password, and not locked
    drop_in = drop_ins / f"ssh_callhome-{account}.conf"
    block = openssh_match_block(account, LOOPBACK, [settings.remote_port])
    assert drop_in.read_text().endswith(f"\n{block}\n")

    script_sshd.stop()  # started again as the reload would: with the drop-in in force
    script_sshd.start()
    await check_tunnel(settings)
    async with script_sshd.connect(client_key) as connection:
        command = await connection.run("id", check=False)
        assert command.exit_status != 0
        assert "uid=" not in str(command.stdout)
        with pytest.raises(asyncssh.ChannelListenError):
            await connection.forward_remote_port(LOOPBACK, free_port(), LOOPBACK, 9)
        socket_path = tmp_path / "forwarded.sock"
        with pytest.raises(asyncssh.ChannelListenError):
            await connection.forward_remote_path(str(socket_path), str(tmp_path / "nowhere"))
        assert not socket_path.exists()

    before = file_states(keys, keys.parent, drop_in)
    second = run_script(script, **paths)
    print(second.stdout, second.stderr)
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("ssh_callhome: nothing to change\n")
    assert file_states(keys, keys.parent, drop_in) == before
    assert reloads.read_text() == "reloaded\n"


@pytest.mark.parametrize("previous", ["an older block", None])
def test_a_config_sshd_refuses_is_put_back_and_the_script_fails(
    throwaway_account: str,
    client_key: asyncssh.SSHKey,
    drop_ins: Path,
    tmp_path: Path,
    previous: str | None,
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {drop_ins}/*.conf\nNoSuchKeyword yes\n")
    drop_in = drop_ins / f"ssh_callhome-{throwaway_account}.conf"
    if previous is not None:
        drop_in.write_text(previous)
    script = server_script(
        client_key, ServerSoftware.OPENSSH, throwaway_account, "", [8123], _COMMENT
    )
    reloads = tmp_path / "reloads"
    result = run_script(
        script,
        SSHD_CONFIG=str(config),
        SSHD_CONFIG_DIR=str(drop_ins),
        SSHD_RELOAD=f"echo reloaded >> {reloads}",
    )
    print(result.stdout, result.stderr)
    assert result.returncode != 0
    assert "sshd -t refuses the configuration with the new block" in result.stderr
    assert sorted(path.name for path in drop_ins.iterdir()) == ([drop_in.name] if previous else [])
    if previous is not None:
        assert drop_in.read_text() == previous
    assert not reloads.exists()


def test_without_the_drop_in_folder_the_script_prints_the_block(
    throwaway_account: str, client_key: asyncssh.SSHKey, drop_ins: Path, tmp_path: Path
) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("# Include /elsewhere/*.conf\nPort 22\n")
    ports = [8123, 2222]
    script = server_script(client_key, ServerSoftware.OPENSSH, throwaway_account, "", ports, "c")
    result = run_script(script, SSHD_CONFIG=str(config), SSHD_CONFIG_DIR=str(drop_ins))
    assert result.returncode == 0, result.stderr
    assert f"does not include {drop_ins}/*.conf: not changed" in result.stdout
    assert openssh_match_block(throwaway_account, "", ports) + "\n" in result.stdout
    assert config.read_text() == "# Include /elsewhere/*.conf\nPort 22\n"
    assert list(drop_ins.iterdir()) == []


async def test_the_script_puts_the_line_in_place_for_dropbear(
    dropbear: DropbearServer, client_key: asyncssh.SSHKey
) -> None:
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    settings = server_settings(dropbear, client_key, free_port())
    old_line = authorized_keys_line(
        client_key, "", [free_port()], "older", ServerSoftware.DROPBEAR
    )
    dropbear.set_authorized_keys([other_key, old_line])
    script = server_script(
        client_key, ServerSoftware.DROPBEAR, dropbear.user, "", [settings.remote_port], _COMMENT
    )
    first = run_script(script)
    print(first.stdout, first.stderr)
    assert first.returncode == 0, first.stderr
    assert 'DROPBEAR_EXTRA_ARGS="-s -K 15 -a"' in first.stdout
    line = authorized_keys_line(
        client_key, "", [settings.remote_port], _COMMENT, ServerSoftware.DROPBEAR
    )
    assert dropbear.authorized_keys_path.read_text() == f"{other_key}\n{line}\n"
    await check_tunnel(settings)
    second = run_script(script)
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("nothing to change\n")


@pytest.mark.parametrize("hostile", _HOSTILE)
def test_an_account_name_the_script_cannot_carry_changes_nothing(
    client_key: asyncssh.SSHKey, tmp_path: Path, hostile: str
) -> None:
    marker = tmp_path / "ran"
    account = hostile.format(marker=marker)
    script = server_script(client_key, ServerSoftware.OPENSSH, account, "", [8123], _COMMENT)
    assert account not in script
    result = run_script(script)
    assert result.returncode == 1
    assert "cannot be written safely" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("hostile", [*_HOSTILE, "", "\\", '"', "'''"])
def test_a_quoted_value_reaches_the_script_as_it_was(tmp_path: Path, hostile: str) -> None:
    marker = tmp_path / "ran"
    value = hostile.format(marker=marker)
    printed = subprocess.run(
        ["sh", "-c", f"VALUE={shell_quote(value, lines=True)}; printf %s \"$VALUE\""],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == value
    assert not marker.exists()


@pytest.mark.parametrize("control", ["a\nb", "a\rb", "a\x00b", "a\x1bb", "a\tb"])
def test_control_characters_are_refused_on_one_line(control: str) -> None:
    with pytest.raises(UnsafeScriptValue):
        shell_quote(control)


def test_the_script_can_be_pasted_into_an_interactive_shell(client_key: asyncssh.SSHKey) -> None:
    """No tab (shells complete on it), and one child shell that its `exit` ends."""
    for software in ServerSoftware:
        script = server_script(client_key, software, "tunnel", "", [8123, 2222], _COMMENT)
        assert "\t" not in script
        assert script.startswith("sh -eu <<'SSH_CALLHOME_SCRIPT'\n")
        assert script.endswith("\nSSH_CALLHOME_SCRIPT")
        assert script.count("SSH_CALLHOME_SCRIPT") == 2
