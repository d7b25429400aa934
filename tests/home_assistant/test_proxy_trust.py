"""The documented reverse-proxy recipe against a real OpenSSH server (GatewayPorts no) and Home
Assistant's real HTTP stack: only the proxy's own address may claim a visitor's address, and a
repair names every `trusted_proxies` entry that trusts more than that."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, DOMAIN
from harness.ha_http import RemoteView, login, start_home_assistant_http
from harness.integration import load, state_of
from harness.network import LOOPBACK, free_port, wait_for_port, wait_until
from harness.nginx import Nginx
from harness.openssh import OpenSSHServer

README = (Path(__file__).parents[2] / "docs" / "visitor-address.md").read_text()
# The local-only user's password (see the local_only_user fixture).
PASSWORD = "correct-password-1"
# What a program on the server claims to be: a machine on the home network.
HOME_NETWORK_ADDRESS = "192.168.1.50"
# What the proxy passes on for a visitor from the internet.
INTERNET_ADDRESS = "203.0.113.9"
# Another program on the server, connecting from a loopback address that is not the proxy's.
OTHER_PROGRAM = "127.0.0.3"
OLD_RECIPE = "64:ff9b:1::/48"


def recipe(pattern: str) -> str:
    """One value of the documented reverse-proxy recipe."""
    found = re.findall(pattern, README)
    assert len(found) == 1, f"the documentation has {len(found)} of {pattern!r}"
    return str(found[0])


RECIPE_TRUSTED_PROXY = recipe(r"use_x_forwarded_for: true\n  trusted_proxies:\n    - (\S+)\n```")
RECIPE_PROXY_ADDRESS = recipe(r"proxy_bind (\S+);")
RECIPE_NGINX = recipe(r"(?s)```\n(proxy_pass http://127\.0\.0\.1:8123;\n.*?)```")


def claiming(source: str, forwarded_for: str) -> aiohttp.ClientSession:
    """A client connecting from `source` that says (X-Forwarded-For) it relays `forwarded_for`."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)),
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.fixture
def trusted_proxy() -> str:
    return RECIPE_TRUSTED_PROXY


@pytest.fixture
async def ha_http_port(
    socket_enabled: None, hass: HomeAssistant, trusted_proxy: str
) -> AsyncIterator[int]:
    """Home Assistant set up for a reverse proxy, as documented (the entry uses this one)."""
    yield await start_home_assistant_http(
        hass, use_x_forwarded_for=True, trusted_proxies=[trusted_proxy]
    )
    await hass.http.stop()


@pytest.fixture
async def nginx(
    socket_enabled: None, tmp_path: Path, entry: MockConfigEntry
) -> AsyncIterator[Nginx]:
    """nginx on the server in front of the tunnel's port, with the documented lines."""
    location = RECIPE_NGINX.replace(":8123;", f":{entry.data[CONF_REMOTE_PORT]};")
    server = Nginx(tmp_path / "nginx", location)
    server.start()
    await wait_for_port(server.port, accepting=True, timeout=10)
    yield server
    server.stop()


async def tunnel_base(hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer) -> str:
    """Start the tunnel; returns the URL of the server's forwarded port."""
    assert openssh.gateway_ports == "no"  # every visitor then arrives from a loopback address
    await load(hass, entry)
    await wait_until(lambda: state_of(hass) == STATE_ON, 10, "tunnel on")
    return f"http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]}"


async def log_in_claiming(base: str, source: str, forwarded_for: str) -> tuple[int, object]:
    """The local-only user's login through the tunnel, from `source` claiming `forwarded_for`."""
    async with claiming(source, forwarded_for) as session:
        return await login(session, base, PASSWORD)


async def test_with_the_recipe_only_the_proxy_can_claim_an_address(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, local_only_user: None
) -> None:
    base = await tunnel_base(hass, entry, openssh)
    # Another program on the server poses as a machine on the home network: refused outright.
    status, _ = await log_in_claiming(base, OTHER_PROGRAM, HOME_NETWORK_ADDRESS)
    assert status == 400
    # The proxy relays a visitor from the internet: Home Assistant sees that visitor, not local.
    status, body = await log_in_claiming(base, RECIPE_PROXY_ADDRESS, INTERNET_ADDRESS)
    assert (status, body) == (403, {"message": "Login blocked: User cannot authenticate remotely"})
    # What the recipe still trusts, as documented: whatever connects from the proxy's address.
    status, body = await log_in_claiming(base, RECIPE_PROXY_ADDRESS, HOME_NETWORK_ADDRESS)
    assert status == 200
    assert isinstance(body, dict)
    assert body["type"] == "create_entry"


async def test_the_readme_nginx_lines_pass_the_visitor_on(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, nginx: Nginx
) -> None:
    hass.http.register_view(RemoteView())
    await tunnel_base(hass, entry, openssh)
    # A visitor of the proxy (from the internet in real life) that claims to relay another one.
    async with claiming("127.0.0.4", HOME_NETWORK_ADDRESS) as session:
        reply = await session.get(f"http://{LOOPBACK}:{nginx.port}/api/test_remote")
        assert reply.status == 200, nginx.log
        assert await reply.text() == "127.0.0.4"


@pytest.mark.parametrize("trusted_proxy", [OLD_RECIPE])
async def test_trusting_every_stand_in_lets_any_program_pose_as_local(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer, local_only_user: None
) -> None:
    """Why the repair below exists: the old recipe let a local-only user in from anywhere."""
    base = await tunnel_base(hass, entry, openssh)
    status, body = await log_in_claiming(base, OTHER_PROGRAM, HOME_NETWORK_ADDRESS)
    assert status == 200
    assert isinstance(body, dict)
    assert body["type"] == "create_entry"


@pytest.mark.parametrize(
    ("trusted_proxy", "problems"),
    [
        (OLD_RECIPE, OLD_RECIPE),
        ("::/0", "::/0"),
        ("64:ff9b:1::/96", "64:ff9b:1::/96"),
        # 127.0.0.1's stand-in: where every program on the server connects from by default.
        ("64:ff9b:1::7f00:1/128", "64:ff9b:1::7f00:1/128"),
        (RECIPE_TRUSTED_PROXY, None),
        ("127.0.0.0/8", None),  # never the address of a tunnelled visitor
    ],
)
async def test_the_repair_names_trust_beyond_the_proxy(
    hass: HomeAssistant, entry: MockConfigEntry, problems: str | None
) -> None:
    await load(hass, entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"local_exposure_{entry.entry_id}")
    if problems is None:
        assert issue is None
        return
    assert issue is not None
    assert issue.translation_key == "proxy_trust_too_wide"
    assert issue.translation_placeholders == {"title": entry.title, "problems": problems}


# TCP mode to a service that is not Home Assistant (TEST-NET-2: never reached here).
TCP_ELSEWHERE = {"mode": "tcp", "target_host": "198.51.100.7", "target_port": 80}


@pytest.mark.parametrize("trusted_proxy", [OLD_RECIPE])
@pytest.mark.parametrize(
    ("options", "extra_target", "raised"),
    [
        # No target: Home Assistant's own web server, so in process.
        ({"mode": "tcp", "target_host": "", "target_port": 0}, None, True),
        (TCP_ELSEWHERE, "localhost", True),  # the extra forward goes in process
        (TCP_ELSEWHERE, "198.51.100.7", False),  # nothing meets Home Assistant's web server
        (TCP_ELSEWHERE, None, False),
        # Webhooks only: none of Home Assistant's middlewares, so no proxy is believed.
        ({"mode": "home_assistant", "expose": "webhooks"}, "localhost", False),
    ],
)
async def test_the_repair_applies_whenever_home_assistant_gets_visitors_in_process(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ha_http_port: int,
    options: dict[str, object],
    extra_target: str | None,
    raised: bool,
) -> None:
    """The main forward in TCP mode, or an extra forward to Home Assistant's own port."""
    extra = f"{free_port()}:{extra_target}:{ha_http_port}" if extra_target else ""
    changed = {**entry.options, **options, "extra_forwards": extra}
    hass.config_entries.async_update_entry(entry, options=changed)
    await load(hass, entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"local_exposure_{entry.entry_id}")
    assert (issue is not None) is raised
