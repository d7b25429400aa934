"""A real nginx on a loopback port, proxying to one upstream with the directives it is given.

With a certificate and key it serves HTTPS, as a reverse proxy on a server does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .network import LOOPBACK, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# One process (no master, so no user switch when run as root), in the foreground, every file
# under its own directory.
_CONFIG = """\
daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen {address}:{port}{tls};
        location / {{
{location}
        }}
    }}
}}
"""


# Follows the listen directive's address, whose ";" ends the last line.
_TLS = """ ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key}"""


class Nginx:
    """nginx in the foreground; `location` holds the directives of its one `location /`.

    `tls` (certificate, key), PEM files: HTTPS with them. Both may change between starts.
    """

    def __init__(
        self, directory: Path, location: str, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.location = location
        self.tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def log(self) -> str:
        """What nginx logged so far."""
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        """Write the configuration and start nginx; port_accepts(port) says when it listens."""
        config = self.directory / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                directory=self.directory,
                address=LOOPBACK,
                port=self.port,
                location=self.location,
                tls=_TLS.format(certificate=self.tls[0], key=self.tls[1]) if self.tls else "",
            )
        )
        self._process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.directory),
                "-c",
                str(config),
                "-e",
                str(self.directory / "error.log"),
            ]
        )

    def stop(self) -> None:
        """Stop nginx at once."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=5)
        self._process = None
