"""scripts/apt-source-uris: the Python build's mirror comes from apt's own sources, no other."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.home_assistant import REPOSITORY

SCRIPT = REPOSITORY / "scripts" / "apt-source-uris"

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

types: deb deb-src
uris: https://second.example/debian
 https://third.example/debian
suites: stable
components: main

Types: deb
Enabled: no
URIs: http://switched-off.example/debian
Suites: bookworm
Components: main
"""

THIRD_PARTY_DEB822 = """\
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""

ONE_LINE = """\
# deb http://commented-out.example/debian bookworm main
deb cdrom:[Debian GNU/Linux 12.0.0 _Bookworm_ - Official amd64 DVD]/ bookworm main
deb [ arch=amd64 signed-by=/usr/share/keyrings/debian.gpg ] http://one.example/debian bookworm main
deb-src http://one.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb http://two.example/debian bookworm main # a comment after the entry
"""

THIRD_PARTY_ONE_LINE = "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"


def extract(apt_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=debian\nVERSION_CODENAME="bookworm"\n')
    environment = {**os.environ, "APT_SOURCES_DIR": str(apt_dir), "OS_RELEASE": str(os_release)}
    return subprocess.run(
        [SCRIPT], env=environment, capture_output=True, text=True, timeout=30, check=False
    )


def apt_dir_with(tmp_path: Path, files: dict[str, str]) -> Path:
    apt_dir = tmp_path / "apt"
    (apt_dir / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (apt_dir / name).write_text(text)
    return apt_dir


@pytest.mark.parametrize(
    ("files", "uris"),
    [
        (
            {"sources.list.d/debian.sources": DEB822},
            [
                "http://mirror.example/debian",
                "https://second.example/debian",
                "https://third.example/debian",
            ],
        ),
        (
            {"sources.list": ONE_LINE},
            ["http://one.example/debian", "http://two.example/debian"],
        ),
        (
            {
                "sources.list": "deb http://mirror.example/debian bookworm main\n",
                "sources.list.d/extra.list": THIRD_PARTY_ONE_LINE + ONE_LINE,
                "sources.list.d/debian.sources": DEB822,
                "sources.list.d/nodesource.sources": THIRD_PARTY_DEB822,
                "sources.list.d/old.sources.disabled": "Types: deb\nURIs: http://x.example\n"
                "Suites: bookworm\n",
            },
            [
                "http://mirror.example/debian",
                "http://one.example/debian",
                "http://two.example/debian",
                "https://second.example/debian",
                "https://third.example/debian",
            ],
        ),
    ],
    ids=["deb822", "one-line", "both, third-party and disabled files left out"],
)
def test_the_debian_archives_of_the_configured_sources(
    tmp_path: Path, files: dict[str, str], uris: list[str]
) -> None:
    result = extract(apt_dir_with(tmp_path, files), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == uris


@pytest.mark.parametrize(
    "files",
    [
        {},
        {
            "sources.list": "deb http://security.example/debian-security bookworm-security main\n",
            "sources.list.d/extra.list": THIRD_PARTY_ONE_LINE,
            "sources.list.d/nodesource.sources": THIRD_PARTY_DEB822,
        },
    ],
    ids=["no sources", "only third-party and security archives"],
)
def test_no_debian_archive_is_a_clear_error(tmp_path: Path, files: dict[str, str]) -> None:
    result = extract(apt_dir_with(tmp_path, files), tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no Debian archive for 'bookworm' in apt's sources" in result.stderr
