"""Everything the benchmark runs: an OpenSSH server, Home Assistant, `ssh -N -R` and an entry.

All on loopback, in a throwaway directory. Two Home Assistant processes ("sites"): one serving
plain HTTP, one serving HTTPS itself with a throwaway self-signed certificate (`http:
ssl_certificate`), each with its own `ssh -N -R` and its own entry into the same sshd. Each gets a
large and a small file under /local and the bench_probe component (an upload sink and its event
loop's lateness). The entries and the ssh clients use the same keepalive, so dead links are
detected on equal terms. BENCH_SCHEMES picks the sites (http,https). With BENCH_BASELINE (the
folder of another checkout's custom_components/ssh_callhome) each scheme gets one more Home
Assistant running that code, for an A/B comparison in the same run: its in-process route is
measured in every round beside the others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.home_assistant import HomeAssistantProcess, add_tunnel_entry
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer
from harness.tls import self_signed

MiB = 1024 * 1024
KEEPALIVE_SECONDS = 5
KEEPALIVE_COUNT = 1
CIPHER = "aes128-gcm@openssh.com"
SMALL_FILE = b"{}" + b" " * 1022  # a small static file, as the frontend fetches many
_WAIT_SECONDS = 120.0

SSH = "ssh -N -R"
IN_PROCESS = "integration, in process"
BASELINE = "baseline, in process"
DIRECT = "no tunnel"
SCHEMES = ("http", "https")


def route_name(scheme: str, kind: str) -> str:
    """The name a route is reported under: its scheme and its kind (SSH, IN_PROCESS, ...)."""
    return f"{scheme}: {kind}"


@dataclass
class Site:
    """One Home Assistant process, serving one scheme, and the ssh client into it."""

    scheme: str
    ha: HomeAssistantProcess
    ssh_port: int = field(default_factory=free_port)
    ssh: subprocess.Popen[bytes] | None = None


@dataclass
class Route:
    """One way into Home Assistant: its name, its site, its port, and the entry behind it if any."""

    name: str
    kind: str
    site: Site
    port: int
    entry_id: str | None = None
    sensor: str | None = None

    @property
    def base(self) -> str:
        """The URL that requests on this route start with."""
        return f"{self.site.scheme}://{LOOPBACK}:{self.port}"


class Rig:
    """Start, reach and stop the whole set-up."""

    def __init__(
        self, download_mib: int, schemes: tuple[str, ...] = SCHEMES, baseline: Path | None = None
    ) -> None:
        self.download_mib = download_mib
        self.workdir = Path(tempfile.mkdtemp(prefix="ssh-callhome-bench-"))
        self.sshd = OpenSSHServer(self.workdir / "sshd", [])
        tls = self_signed(self.workdir / "tls", LOOPBACK)
        self.sites = {
            scheme: self._site(scheme, tls if scheme == "https" else None) for scheme in schemes
        }
        self.baselines = {
            scheme: self._site(f"{scheme}-baseline", tls if scheme == "https" else None, baseline)
            for scheme in (schemes if baseline is not None else ())
        }
        self.routes: dict[str, Route] = {}

    def _site(self, name: str, tls: tuple[Path, Path] | None, code: Path | None = None) -> Site:
        probe = Path(__file__).with_name("bench_probe")
        components = {"bench_probe": probe} | ({"ssh_callhome": code} if code else {})
        ha = HomeAssistantProcess(self.workdir / name, components, "bench_probe:\n", tls)
        return Site(ha.scheme, ha)

    def start(self) -> None:
        """sshd, every Home Assistant with its files, the entries and the ssh clients; all up."""
        self.sshd.start()
        self._authorize_ssh_key()
        for scheme, site in self.sites.items():
            self._start_ha(site)
            self._add(route_name(scheme, SSH), SSH, site, site.ssh_port)
            self._add_entry(route_name(scheme, IN_PROCESS), IN_PROCESS, site)
            if scheme in self.baselines:
                baseline = self.baselines[scheme]
                self._start_ha(baseline)
                self._add_entry(route_name(scheme, BASELINE), BASELINE, baseline)
            self._add(route_name(scheme, DIRECT), DIRECT, site, site.ha.port)
            self.start_ssh(site)
        for route in self.tunnels():
            if route.entry_id is not None:
                route.sensor = self._tunnel_sensor(route.site.ha, route.entry_id)
                self.wait_sensor(route, "on")

    def tunnels(self) -> list[Route]:
        """The tunnelled routes."""
        return [route for route in self.routes.values() if route.kind != DIRECT]

    def direct(self, site: Site) -> Route:
        """Home Assistant reached with no tunnel (the benchmark's own questions go this way)."""
        return next(r for r in self.routes.values() if r.kind == DIRECT and r.site is site)

    def stop(self) -> None:
        """Everything down, the directory gone."""
        for site in [*self.sites.values(), *self.baselines.values()]:
            self.stop_ssh(site)
            site.ha.stop()
        self.sshd.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start_ssh(self, site: Site) -> None:
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
        site.ssh = subprocess.Popen(
            [
                *("ssh", "-N", "-F", "/dev/null", "-i", str(key), "-p", str(self.sshd.port)),
                *arguments,
                *("-R", f"{LOOPBACK}:{site.ssh_port}:{LOOPBACK}:{site.ha.port}"),
                f"{self.sshd.user}@{LOOPBACK}",
            ],
            stderr=subprocess.DEVNULL,
        )

    @staticmethod
    def stop_ssh(site: Site) -> None:
        """The ssh client ended (it may have ended by itself)."""
        if site.ssh is not None and site.ssh.poll() is None:
            site.ssh.terminate()
            site.ssh.wait(timeout=10)

    @staticmethod
    def reload_entry(route: Route) -> None:
        """Unload and load the route's entry, as its menu's Reload does."""
        route.site.ha.request("POST", f"/api/config/config_entries/entry/{route.entry_id}/reload")

    @staticmethod
    def wait_sensor(route: Route, state: str) -> None:
        """Until the route's Tunnel sensor shows `state`."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while route.site.ha.state(str(route.sensor)) != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{route.sensor} did not turn {state}")
            time.sleep(0.05)

    def _add(self, name: str, kind: str, site: Site, port: int) -> Route:
        self.routes[name] = Route(name, kind, site, port)
        return self.routes[name]

    def _start_ha(self, site: Site) -> None:
        self._write_files(site.ha)
        site.ha.start()
        site.ha.onboard()

    def _add_entry(self, name: str, kind: str, site: Site) -> None:
        port = free_port()
        entry = add_tunnel_entry(site.ha, self.sshd, port)
        self._set_options(site.ha, entry)
        route = self._add(name, kind, site, port)
        route.entry_id = entry

    def _write_files(self, ha: HomeAssistantProcess) -> None:
        www = ha.directory / "www"
        www.mkdir(parents=True)
        (www / "small.json").write_bytes(SMALL_FILE)
        block = os.urandom(MiB)
        with (www / "big.bin").open("wb") as file:
            for _ in range(self.download_mib):
                file.write(block)

    @staticmethod
    def _set_options(ha: HomeAssistantProcess, entry_id: str) -> None:
        """The benchmark's keepalive and heartbeat; the caps stay at their defaults.

        The concurrent clients each come from a loopback address of their own, as visitors do.
        """
        flow = ha.request("POST", "/api/config/config_entries/options/flow", {"handler": entry_id})
        ha.request(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {
                "keepalive_interval": KEEPALIVE_SECONDS,
                "keepalive_count": KEEPALIVE_COUNT,
                "bind": "all",
                "backoff_max": 10,
                "probe_interval": 3600,
                "mode": "home_assistant",
                "expose": "home_assistant",
                # The defaults (engine/limits.py), as a user has them.
                "max_connections": 100,
                "max_connections_per_visitor": 20,
                # The frozen-server figure measures keepalive alone, not a reconnect by the check.
                "self_heal_after": 0,
                "heartbeat_interval": 5,
            },
        )

    def _authorize_ssh_key(self) -> None:
        key = self.workdir / "ssh-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.sshd.add_authorized_key(key.with_suffix(".pub").read_text().strip())

    @staticmethod
    def _tunnel_sensor(ha: HomeAssistantProcess, entry_id: str) -> str:
        """The entry's Tunnel binary sensor, found as a template would, once it exists."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while not (sensor := Rig._find_tunnel_sensor(ha, entry_id)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the entry {entry_id} has no Tunnel sensor")
            time.sleep(0.1)
        return sensor

    @staticmethod
    def _find_tunnel_sensor(ha: HomeAssistantProcess, entry_id: str) -> str:
        template = (
            "{% for e in integration_entities('ssh_callhome') %}"
            "{% if e.startswith('binary_sensor.') "
            "and e.rstrip('_0123456789').endswith('_tunnel') %}"
            f"{{% if config_entry_id(e) == '{entry_id}' %}}{{{{ e }}}}{{% endif %}}"
            "{% endif %}{% endfor %}"
        )
        return ha.render(template).strip()
