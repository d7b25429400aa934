"""A real nginx on a loopback port, serving one `location /` with the directives it is given.

With a certificate and key it serves HTTPS, as a reverse proxy on a server does. Its access log
has, a line per request, the PROXY protocol's addresses ("-" without the header) and the
connection's own: see ACCESS_FIELDS.
"""

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
    log_format addresses '$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr '
                         '$proxy_protocol_server_port $realip_remote_addr $remote_addr $status';
    access_log {directory}/access.log addresses;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen {address}:{port}{listen_options}{tls};
{server_directives}
        location / {{
{location}
        }}
    }}
}}
"""


# The fields of an access log line, in order: what a PROXY protocol header said ("-" without
# one), the connection's own address (peer), and the client's as nginx takes it (client: the
# peer, unless realip directives take it from the header).
ACCESS_FIELDS = (
    "proxy_addr",
    "proxy_port",
    "proxy_server_addr",
    "proxy_server_port",
    "peer",
    "client",
    "status",
)

# Follows the listen directive's address, whose ";" ends the last line.
_TLS = """ ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key}"""


class Nginx:
    """nginx in the foreground; `location` holds the directives of its one `location /`.

    `listen_options` follow the listen address (" proxy_protocol": every connection must start
    with a PROXY protocol header); `server_directives` go in the `server` block. `tls`
    (certificate, key), PEM files: HTTPS with them. Both may change between starts.
    """

    def __init__(
        self,
        directory: Path,
        location: str,
        tls: tuple[Path, Path] | None = None,
        listen_options: str = "",
        server_directives: str = "",
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.location = location
        self.tls = tls
        self.listen_options = listen_options
        self.server_directives = server_directives
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def log(self) -> str:
        """What nginx logged so far."""
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    @property
    def requests(self) -> list[dict[str, str]]:
        """The access log: one dict of ACCESS_FIELDS per request served."""
        path = self.directory / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [dict(zip(ACCESS_FIELDS, line.split(" "), strict=True)) for line in lines]

    def start(self) -> None:
        """Write the configuration and start nginx; port_accepts(port) says when it listens."""
        config = self.directory / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                directory=self.directory,
                address=LOOPBACK,
                port=self.port,
                listen_options=self.listen_options,
                server_directives=self.server_directives,
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
