"""Home Assistant's own HTTP server in a test: started for real on loopback, and logged into."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT

from .integration import load, state_of
from .network import LOOPBACK, free_port, port_accepts, wait_until


async def start_home_assistant_http(hass: HomeAssistant, **http_config: Any) -> int:
    """Home Assistant's own HTTP server, really listening on a new loopback port; returns the port.

    `http_config` adds to its `http:` configuration. Stop it with `hass.http.stop()`.
    """
    port = free_port()
    config = {"http": {"server_host": [LOOPBACK], "server_port": port, **http_config}}
    assert await async_setup_component(hass, "http", config)
    assert await async_setup_component(hass, "api", {})
    # The test harness replaces http's own start; start the real server here.
    await hass.http.start()
    assert await port_accepts(port)
    return port


class RemoteView(HomeAssistantView):
    """Tells a client the address Home Assistant sees for it."""

    url = "/api/test_remote"
    name = "api:test_remote"
    requires_auth = False

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(text=str(request.remote))


def serve_file(hass: HomeAssistant, address: str, path: Path) -> None:
    """Serve `path` at `address` as /local and the frontend's files are: FileResponse, sendfile."""

    class FileView(HomeAssistantView):
        url = address
        name = "api:" + address.rsplit("/", 1)[1]
        requires_auth = False

        async def get(self, request: web.Request) -> web.FileResponse:
            return web.FileResponse(path)

    hass.http.register_view(FileView())


async def load_with_remote_view(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Load `entry` with RemoteView registered, and wait until the tunnel is up."""
    hass.http.register_view(RemoteView())
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")


def visitor(source: str) -> aiohttp.ClientSession:
    """A client whose connections to the server come from `source` (a loopback address)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


def through(entry: MockConfigEntry, path: str, scheme: str = "http") -> str:
    """The URL of `path` at the server's end of `entry`'s tunnel."""
    return f"{scheme}://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}{path}"


async def login(session: aiohttp.ClientSession, base: str, password: str) -> tuple[int, Any]:
    """Home Assistant's own login flow, as the frontend runs it."""
    client_id = f"{base}/"
    start = await session.post(
        f"{base}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": client_id,
        },
    )
    if start.status != 200:
        return start.status, await start.text()
    flow = await start.json()
    answer = await session.post(
        f"{base}/auth/login_flow/{flow['flow_id']}",
        json={"client_id": client_id, "username": "visitor", "password": password},
    )
    return answer.status, await answer.json()


async def open_tls_visitor(
    entry: MockConfigEntry, certificate: Path
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A visitor's TLS connection through `entry`'s tunnel to Home Assistant serving HTTPS itself.

    Its throwaway `certificate` is trusted, whatever name it is reached by.
    """
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False
    return await asyncio.open_connection(LOOPBACK, entry.data[CONF_REMOTE_PORT], ssl=context)
