"""Everything the benchmark runs: an OpenSSH server, Home Assistant, `ssh -N -R` and an entry.

All on loopback, in a throwaway directory. Home Assistant gets a large and a small file under
/local and the bench_probe component (an upload sink and its event loop's lateness). The entry and
the ssh client use the same keepalive, so dead links are detected on equal terms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.home_assistant import HomeAssistantProcess, add_tunnel_entry
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer

MiB = 1024 * 1024
KEEPALIVE_SECONDS = 5
KEEPALIVE_COUNT = 1
CIPHER = "aes128-gcm@openssh.com"
SMALL_FILE = b"{}" + b" " * 1022  # a small static file, as the frontend fetches many
_WAIT_SECONDS = 120.0


@dataclass
class Route:
    """One way into Home Assistant: its name, its port, and the entry behind it if any."""

    name: str
    port: int
    entry_id: str | None = None
    sensor: str | None = None

    @property
    def base(self) -> str:
        """The URL that requests on this route start with."""
        return f"http://{LOOPBACK}:{self.port}"


SSH = "ssh -N -R"
IN_PROCESS = "integration, in process"
DIRECT = "no tunnel"


class Rig:
    """Start, reach and stop the whole set-up."""

    def __init__(self, download_mib: int) -> None:
        self.download_mib = download_mib
        self.workdir = Path(tempfile.mkdtemp(prefix="ssh-callhome-bench-"))
        self.sshd = OpenSSHServer(self.workdir / "sshd", [])
        probe = Path(__file__).with_name("bench_probe")
        self.ha = HomeAssistantProcess(
            self.workdir / "config", {"bench_probe": probe}, "bench_probe:\n"
        )
        self.ssh: subprocess.Popen[bytes] | None = None
        self.ssh_port = free_port()
        self.routes: dict[str, Route] = {}

    def start(self) -> None:
        """sshd, Home Assistant with its files, the entry and the ssh client; all up."""
        self.sshd.start()
        self._write_files()
        self.ha.start()
        self.ha.onboard()
        self.routes[DIRECT] = Route(DIRECT, self.ha.port)
        port = free_port()
        entry = add_tunnel_entry(self.ha, self.sshd, port)
        self._set_options(entry)
        self.routes[IN_PROCESS] = Route(IN_PROCESS, port, entry)
        self._authorize_ssh_key()
        self.start_ssh()
        self.routes[SSH] = Route(SSH, self.ssh_port)
        for path in self.tunnels():
            if path.entry_id is not None:
                path.sensor = self._tunnel_sensor(path.entry_id)
                self.wait_sensor(path.sensor, "on")

    def tunnels(self) -> list[Route]:
        """The tunnelled paths, OpenSSH first."""
        return [self.routes[name] for name in (SSH, IN_PROCESS)]

    def stop(self) -> None:
        """Everything down, the directory gone."""
        self.stop_ssh()
        self.ha.stop()
        self.sshd.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start_ssh(self) -> None:
        """OpenSSH's client holding the forward to Home Assistant's port, as the add-on ran it."""
        key = self.workdir / "ssh-key"
        known = self.workdir / "known_hosts"
        known.write_text(f"[{LOOPBACK}]:{self.sshd.port} {self.sshd.host_public_key}\n")
        options = {
            "UserKnownHostsFile": str(known),
            "StrictHostKeyChecking": "yes",
            "Ciphers": CIPHER,
            "ServerAliveInterval": str(KEEPALIVE_SECONDS),
            "ServerAliveCountMax": str(KEEPALIVE_COUNT),
            "ExitOnForwardFailure": "yes",
        }
        arguments = [item for name, value in options.items() for item in ("-o", f"{name}={value}")]
        self.ssh = subprocess.Popen(
            [
                *("ssh", "-N", "-F", "/dev/null", "-i", str(key), "-p", str(self.sshd.port)),
                *arguments,
                *("-R", f"{LOOPBACK}:{self.ssh_port}:{LOOPBACK}:{self.ha.port}"),
                f"{self.sshd.user}@{LOOPBACK}",
            ],
            stderr=subprocess.DEVNULL,
        )

    def stop_ssh(self) -> None:
        """The ssh client ended (it may have ended by itself)."""
        if self.ssh is not None and self.ssh.poll() is None:
            self.ssh.terminate()
            self.ssh.wait(timeout=10)

    def reload_entry(self, entry_id: str) -> None:
        """Unload and load the entry, as its menu's Reload does."""
        self.ha.request("POST", f"/api/config/config_entries/entry/{entry_id}/reload")

    def wait_sensor(self, sensor: str, state: str) -> None:
        """Until the Tunnel sensor shows `state`."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while self.ha.state(sensor) != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sensor} did not turn {state}")
            time.sleep(0.05)

    def _write_files(self) -> None:
        www = self.ha.directory / "www"
        www.mkdir(parents=True)
        (www / "small.json").write_bytes(SMALL_FILE)
        block = os.urandom(MiB)
        with (www / "big.bin").open("wb") as file:
            for _ in range(self.download_mib):
                file.write(block)

    def _set_options(self, entry_id: str) -> None:
        flow = self.ha.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        self.ha.request(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {
                "keepalive_interval": KEEPALIVE_SECONDS,
                "keepalive_count": KEEPALIVE_COUNT,
                "bind": "all",
                "backoff_max": 10,
                "probe_interval": 3600,
                "mode": "home_assistant",
                # The 50 concurrent clients all come from 127.0.0.1: one visitor to the caps.
                "max_connections": 100,
                "max_connections_per_visitor": 100,
                "expose": "home_assistant",
                # The frozen-server figure measures keepalive alone, not a reconnect by the check.
                "self_heal_after": 0,
                "heartbeat_interval": 5,
            },
        )

    def _authorize_ssh_key(self) -> None:
        key = self.workdir / "ssh-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.sshd.add_authorized_key(key.with_suffix(".pub").read_text().strip())

    def _tunnel_sensor(self, entry_id: str) -> str:
        """The entry's Tunnel binary sensor, found as a template would."""
        template = (
            "{% for e in integration_entities('ssh_callhome') %}"
            "{% if e.startswith('binary_sensor.') "
            "and e.rstrip('_0123456789').endswith('_tunnel') %}"
            f"{{% if config_entry_id(e) == '{entry_id}' %}}{{{{ e }}}}{{% endif %}}"
            "{% endif %}{% endfor %}"
        )
        return self.ha.render(template).strip()
