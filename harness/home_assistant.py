"""A real Home Assistant process with the integration, driven over its REST API as the UI does.

Used by the demo and by the browser test: a throwaway config directory, the frontend, onboarding
with a known user, and the config flow run through /api/config/config_entries/flow.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .network import LOOPBACK, free_port
from .openssh import OpenSSHServer

REPOSITORY = Path(__file__).resolve().parents[1]
DEMO_USER = "demo"
DEMO_PASSWORD = "ssh-callhome-demo"
_START_TIMEOUT = 180.0

_CONFIGURATION = """\
homeassistant:
  name: SSH Call Home demo
  time_zone: UTC
frontend:
config:
http:
  server_host: {host}
  server_port: {port}
{tls}logger:
  default: warning
  logs:
    custom_components.ssh_callhome: info
"""


# Home Assistant serving HTTPS here does so with a throwaway self-signed certificate.
_UNVERIFIED = ssl.create_default_context()
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


class HomeAssistantProcess:
    """`python -m homeassistant` on a loopback port, with a config directory of its own."""

    def __init__(
        self,
        directory: Path,
        components: dict[str, Path] | None = None,
        extra_yaml: str = "",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`components`: more custom integrations (name: folder; `ssh_callhome` replaces the
        repository's own); `extra_yaml` configures them. `tls`: a certificate and its key, for
        Home Assistant to serve HTTPS with itself (`http: ssl_certificate`)."""
        self.directory = directory
        self.components = {"ssh_callhome": REPOSITORY / "custom_components" / "ssh_callhome"}
        self.components |= components or {}
        self.extra_yaml = extra_yaml
        self.tls = tls
        self.port = free_port()
        self.token = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        """http, or https when Home Assistant serves TLS itself."""
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """Where Home Assistant's own web server answers."""
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The Home Assistant process."""
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        """Write the configuration, start the process and wait until it answers."""
        custom = self.directory / "custom_components"
        custom.mkdir(parents=True, exist_ok=True)
        for name, folder in self.components.items():
            link = custom / name
            if not link.exists():
                link.symlink_to(folder)
        tls = ""
        if self.tls is not None:
            tls = f"  ssl_certificate: {self.tls[0]}\n  ssl_key: {self.tls[1]}\n"
        config = _CONFIGURATION.format(host=LOOPBACK, port=self.port, tls=tls) + self.extra_yaml
        (self.directory / "configuration.yaml").write_text(config)
        self._skip_onboarding_extras()
        log = (self.directory / "home-assistant.out").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "-c", str(self.directory), "--skip-pip"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches the demo, which stops it
            # `-m` puts the working directory first on sys.path: in the repository, its own
            # custom_components package would hide the config directory's.
            cwd=self.directory,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers("/api/onboarding"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Home Assistant did not start; see {log.name}")
            time.sleep(0.5)

    def _skip_onboarding_extras(self) -> None:
        """Leave only the user step of onboarding.

        The other steps set up weather, speech and radio integrations that this instance has
        no use, nor packages, for.
        """
        storage = self.directory / ".storage"
        storage.mkdir(exist_ok=True)
        onboarding = {
            "version": 4,
            "minor_version": 1,
            "key": "onboarding",
            "data": {"done": ["core_config", "analytics", "integration"]},
        }
        path = storage / "onboarding"
        if not path.exists():
            path.write_text(json.dumps(onboarding))

    def stop(self) -> None:
        """SIGTERM, as a service manager would; SIGKILL after 30 s."""
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def onboard(self) -> None:
        """Create the demo user, the one onboarding step left, and log in as it."""
        client_id = f"{self.url}/"
        user = self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Demo",
                "username": DEMO_USER,
                "password": DEMO_PASSWORD,
                "language": "en",
            },
        )
        tokens = self.request(
            "POST",
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": user["auth_code"],
                "client_id": client_id,
            },
        )
        self.token = tokens["access_token"]

    def state(self, entity_id: str) -> str | None:
        """An entity's state, or None while it does not exist."""
        try:
            return str(self.request("GET", f"/api/states/{entity_id}")["state"])
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
    ) -> Any:
        """One call of Home Assistant's REST API, with the token once there is one."""
        raw = self._call(method, path, body, form)
        return json.loads(raw) if raw else None

    def render(self, template: str) -> str:
        """A template rendered by Home Assistant (its answer is text, not JSON)."""
        return self._call("POST", "/api/template", {"template": template}, None).decode()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        form: dict[str, str] | None,
    ) -> bytes:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30, context=_UNVERIFIED) as response:
            return bytes(response.read())

    def _answers(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except (OSError, urllib.error.URLError):
            return False
        return True


def add_tunnel_entry(ha: HomeAssistantProcess, sshd: OpenSSHServer, remote_port: int) -> str:
    """Run the config flow as a user does; returns the new entry's id.

    It generates a key, confirms the host key, authorizes the key on the server with the line
    the flow shows, and finishes.
    """
    flow_path = "/api/config/config_entries/flow"
    menu = ha.request("POST", flow_path, {"handler": "ssh_callhome"})
    step = f"{flow_path}/{menu['flow_id']}"
    ha.request("POST", step, {"next_step_id": "generate_key"})
    server = {
        "host": LOOPBACK,
        "port": sshd.port,
        "username": sshd.user,
        "remote_port": remote_port,
    }
    confirm = ha.request("POST", step, server)
    if confirm.get("step_id") != "confirm":
        raise RuntimeError(f"the flow did not reach the fingerprint: {confirm}")
    authorize = ha.request("POST", step, {})
    sshd.add_authorized_key(authorize["description_placeholders"]["line"])
    created = ha.request("POST", step, {})
    if created.get("type") != "create_entry":
        raise RuntimeError(f"the flow did not create the entry: {created}")
    return str(created["result"]["entry_id"])
