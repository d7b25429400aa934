"""Attack on the server script on a BusyBox server (Alpine, a likely VPS): run by BusyBox's sh
with a PATH of BusyBox's applets only, plus what Alpine's base has besides them (musl-utils'
getent) and BusyBox's su, which Debian's build of BusyBox leaves out (util-linux's stands in).

BusyBox has a `setpriv` applet (Alpine builds it: CONFIG_SETPRIV=y), but it knows only --nnp,
--inh-caps and --ambient-caps: the script finds it first, calls it with --reuid, and stops
there, never trying the su that would have worked. The script's comment says BusyBox has su.
Without getent (BusyBox alone has none) every account looks missing to the script.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from harness.server_script import folder_for_accounts
from harness.server_script_run import no_login_account, openssh_script, run_printing_only

_COMMENT = "ssh_callhome@busybox"
# Alpine's base besides BusyBox's applets: getent (musl-utils); su is BusyBox's own there.
_NOT_FROM_BUSYBOX = ("getent", "su")
# Alpine's login shell for an account that only holds keys.
_ALPINE_NO_LOGIN = "/sbin/nologin"


@pytest.fixture
def busybox_path() -> Iterator[str]:
    """A PATH of one folder, readable by every account: BusyBox's applets (sh among them, so
    the script runs in BusyBox's sh) and Alpine's extras."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed (scripts/setup installs it)")
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    with folder_for_accounts() as folder:
        for applet in listing.stdout.split():
            (folder / applet).symlink_to(busybox)
        for command in _NOT_FROM_BUSYBOX:
            found = shutil.which(command)
            assert found is not None, f"{command} stands in for Alpine's"
            (folder / command).unlink(missing_ok=True)
            (folder / command).symlink_to(found)
        yield str(folder)


def test_on_busybox_the_script_installs_the_key(
    client_key: asyncssh.SSHKey, tmp_path: Path, busybox_path: str
) -> None:
    # BusyBox has adduser, not useradd: on Alpine the account is made first, by hand.
    with no_login_account(_ALPINE_NO_LOGIN) as name:
        script = openssh_script(client_key, name, _COMMENT)

        result = run_printing_only(script, tmp_path, PATH=busybox_path)

        assert result.returncode == 0
        keys = Path(pwd.getpwnam(name).pw_dir) / ".ssh" / "authorized_keys"
        assert _COMMENT in keys.read_text()


def test_without_getent_the_script_says_what_is_missing(
    client_key: asyncssh.SSHKey, tmp_path: Path, busybox_path: str
) -> None:
    # BusyBox alone (OpenWrt, Buildroot, an Alpine without musl-utils) has no getent.
    Path(busybox_path, "getent").unlink()
    with no_login_account(_ALPINE_NO_LOGIN) as name:
        script = openssh_script(client_key, name, _COMMENT)

        result = run_printing_only(script, tmp_path, PATH=busybox_path)

        assert result.returncode != 0
        assert f"create the account {name}" not in result.stderr, "it exists"
        assert "getent" in result.stderr.replace("getent: not found", "")
