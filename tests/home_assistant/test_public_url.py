"""The public URL check through the real stack: Home Assistant's shared HTTP session, a real nginx
serving HTTPS with a certificate from a test CA, in front of the forwarded port of a tunnel to a
real OpenSSH server; and what Home Assistant shows and offers about it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import asyncssh
import pytest
from aiohttp import web
from aiohttp.resolver import AsyncResolver

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.binary_sensor import is_reachable
from custom_components.ssh_callhome.const import CONF_REMOTE_PORT, DEFAULT_OPTIONS, DOMAIN
from custom_components.ssh_callhome.engine import tunnel as tunnel_module
from custom_components.ssh_callhome.engine.healing import SelfHealPolicy
from custom_components.ssh_callhome.engine.probe import ProbeResult, ProbeSpec
from custom_components.ssh_callhome.engine.public_url import (
    InvalidPublicUrl,
    PublicUrlCheck,
    PublicUrlResult,
    check_public_url,
    parse_public_url,
    system_tls_context,
)
from custom_components.ssh_callhome.engine.settings import TunnelSettings
from custom_components.ssh_callhome.engine.state import Status, TunnelState
from custom_components.ssh_callhome.engine.tunnel import Tunnel
from harness.engine import connected, running, server_settings, tcp_tunnel
from harness.integration import REACHABLE, load
from harness.network import (
    LOOPBACK,
    SilentServer,
    free_port,
    serve_http,
    wait_for_port,
    wait_until,
)
from harness.nginx import Nginx
from harness.openssh import OpenSSHServer
from harness.tls import certificate_authority, issued

ANSWER = b"only this home assistant says this"
PROBE = ProbeSpec(path="/api/ssh_callhome/probe/test-token", answer=ANSWER, timeout=5.0)
PUBLIC_URL = "https://home.example.com"


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("https://home.example.com", "https://home.example.com"),
        (" https://Home.Example.com/ ", "https://home.example.com"),
        ("http://vps.example.net:8123", "http://vps.example.net:8123"),
        ("https://home.example.com:443", "https://home.example.com"),
        ("http://203.0.113.9:8123", "http://203.0.113.9:8123"),
        ("http://[2001:db8::1]:8123", "http://[2001:db8::1]:8123"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_a_url_is_kept_as_scheme_host_and_port(text: str, stored: str) -> None:
    assert parse_public_url(text) == stored


@pytest.mark.parametrize(
    "text",
    [
        "home.example.com",  # no scheme
        "ftp://home.example.com",
        "https://",
        "https://home.example.com/lovelace",  # a path
        "https://home.example.com/?a=1",
        "https://home.example.com/#x",
        "https://user:secret@home.example.com",  # credentials
        "https://user@home.example.com",
        "https://home.example.com:0",
        "https://home.example.com:65536",
        "https://home example.com",
        "https://-home.example.com",
        "https://[::1",
    ],
)
def test_anything_more_or_less_is_refused(text: str) -> None:
    with pytest.raises(InvalidPublicUrl):
        parse_public_url(text)


@pytest.mark.parametrize(
    ("direct", "public", "expected"),
    [
        (None, None, None),
        (ProbeResult.REACHABLE, None, True),  # no public URL (or not checked yet)
        (ProbeResult.REACHABLE, PublicUrlResult.REACHABLE, True),
        (ProbeResult.REACHABLE, PublicUrlResult.NAME_NOT_FOUND, False),
        (ProbeResult.WRONG_ANSWER, PublicUrlResult.REACHABLE, False),
        (ProbeResult.FORBIDDEN, PublicUrlResult.REACHABLE, True),  # the direct check: no verdict
        (ProbeResult.FORBIDDEN, PublicUrlResult.TLS_ERROR, False),
        (ProbeResult.FORBIDDEN, None, None),
    ],
)
def test_the_sensor_is_on_only_when_every_verdict_is(
    direct: ProbeResult | None, public: PublicUrlResult | None, expected: bool | None
) -> None:
    state = TunnelState(
        Status.CONNECTED, datetime.now(UTC), reachability=direct, public_url_result=public
    )
    assert is_reachable(state) is expected


@pytest.fixture
async def dns_resolver() -> AsyncIterator[None]:
    """Home Assistant's shared session with a real DNS resolver on this test's event loop.

    The test harness gives every test one resolver made on its own session-wide loop, which
    fails on any other; Home Assistant's own asks aiodns, as this one does, for every name that
    is not `.local`.
    """
    resolver = AsyncResolver()
    resolver.real_close = resolver.close  # type: ignore[attr-defined]
    with patch("homeassistant.helpers.aiohttp_client._async_make_resolver", return_value=resolver):
        yield
    await resolver.close()


@pytest.fixture
async def home_assistant_stand_in(socket_enabled: None) -> AsyncIterator[int]:
    """What the tunnel delivers to: it answers the probe's path with the probe's answer."""
    port = free_port()
    runner = await serve_http(port, ANSWER)
    yield port
    await runner.cleanup()


@pytest.fixture
def engine_settings(
    openssh: OpenSSHServer, client_key: asyncssh.SSHKey, home_assistant_stand_in: int
) -> TunnelSettings:
    return replace(server_settings(openssh, client_key, home_assistant_stand_in), probe=PROBE)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Any]:
    """The CA that signs the proxy's certificates; only the injected context trusts it."""
    return certificate_authority(tmp_path / "ca")


@pytest.fixture
def trusting_ca(ca: tuple[Path, Any]) -> ssl.SSLContext:
    """The system's verification, and the test CA besides (created outside the event loop)."""
    context = system_tls_context()
    context.load_verify_locations(cafile=ca[0])
    return context


@pytest.fixture
async def proxy(
    tmp_path: Path, ca: tuple[Path, Any], engine_settings: TunnelSettings
) -> AsyncIterator[Nginx]:
    """nginx on the "server", serving HTTPS for 127.0.0.1 in front of the tunnel's port."""
    server = Nginx(
        tmp_path / "nginx",
        f"proxy_pass http://{LOOPBACK}:{engine_settings.remote_port};",
        tls=issued(tmp_path / "ours", ca, LOOPBACK),
    )
    server.start()
    await wait_for_port(server.port, accepting=True, timeout=10)
    yield server
    server.stop()


@pytest.fixture
async def tunnel(
    hass: HomeAssistant,
    dns_resolver: None,
    engine_settings: TunnelSettings,
    proxy: Nginx,
    trusting_ca: ssl.SSLContext,
) -> AsyncIterator[Tunnel]:
    """The engine, up, with the proxy's URL as its public URL, through the shared session."""
    public_url = PublicUrlCheck(
        url=f"https://{LOOPBACK}:{proxy.port}",
        session=partial(async_get_clientsession, hass),
        tls=trusting_ca,
    )
    async with up(replace(engine_settings, public_url=public_url)) as engine:
        yield engine


@contextlib.asynccontextmanager
async def up(settings: TunnelSettings) -> AsyncIterator[Tunnel]:
    """The engine with these settings, connected, until the block ends."""
    engine = tcp_tunnel(settings)
    async with running(engine):
        await wait_until(lambda: connected(engine), 10, "tunnel up")
        yield engine


def public_url_of(tunnel: Tunnel, url: str | None = None, **changes: Any) -> PublicUrlCheck:
    check = tunnel.settings.public_url
    assert check is not None
    return replace(check, url=url or check.url, **changes)


async def test_the_engine_checks_the_public_url_with_the_probe(tunnel: Tunnel) -> None:
    await wait_until(lambda: tunnel.state.public_url_result is not None, 10, "public URL checked")
    assert tunnel.state.public_url_result is PublicUrlResult.REACHABLE
    assert tunnel.state.reachability is ProbeResult.REACHABLE


async def test_without_the_tunnel_the_proxy_answers_a_gateway_error(
    tunnel: Tunnel, openssh: OpenSSHServer
) -> None:
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.REACHABLE
    openssh.stop()  # the server's side of the forward goes with it; nginx stays
    await wait_for_port(tunnel.settings.remote_port, accepting=False, timeout=10)
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.GATEWAY_ERROR


async def test_a_stopped_proxy_refuses(tunnel: Tunnel, proxy: Nginx) -> None:
    proxy.stop()
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.REFUSED


async def test_a_certificate_for_another_name_is_a_tls_error(
    tunnel: Tunnel, proxy: Nginx, ca: tuple[Path, Any], tmp_path: Path
) -> None:
    proxy.stop()
    proxy.tls = issued(tmp_path / "theirs", ca, "other.example")
    proxy.start()
    await wait_for_port(proxy.port, accepting=True, timeout=10)
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.TLS_ERROR


async def test_by_default_only_the_systems_authorities_are_trusted(tunnel: Tunnel) -> None:
    check = public_url_of(tunnel, tls=await asyncio.to_thread(system_tls_context))
    assert await check_public_url(check, PROBE) is PublicUrlResult.TLS_ERROR


async def test_another_service_at_the_url_is_a_wrong_answer(tunnel: Tunnel, proxy: Nginx) -> None:
    proxy.stop()
    proxy.location = 'return 200 "another service";'
    proxy.start()
    await wait_for_port(proxy.port, accepting=True, timeout=10)
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.WRONG_ANSWER


async def test_a_redirect_is_not_followed(
    tunnel: Tunnel, proxy: Nginx, home_assistant_stand_in: int
) -> None:
    """Visitors were given this URL: an answer found elsewhere does not count."""
    proxy.stop()
    proxy.location = f"return 302 http://{LOOPBACK}:{home_assistant_stand_in}$request_uri;"
    proxy.start()
    await wait_for_port(proxy.port, accepting=True, timeout=10)
    assert await check_public_url(public_url_of(tunnel), PROBE) is PublicUrlResult.WRONG_ANSWER


async def test_a_failing_public_url_is_logged_once(
    hass: HomeAssistant,
    engine_settings: TunnelSettings,
    trusting_ca: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checked again and again with the same failure: one warning, not one per check."""
    requests: list[str] = []

    async def another_service(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(text="another service")

    app = web.Application()
    app.router.add_get("/{tail:.*}", another_service)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    monkeypatch.setattr(tunnel_module, "WATCH_INTERVAL", 0.05)
    public_url = PublicUrlCheck(
        f"http://{LOOPBACK}:{port}", partial(async_get_clientsession, hass), trusting_ca
    )
    # Self-healing off: three failed checks in a row would reconnect, and start the count anew.
    settings = replace(
        engine_settings,
        probe=replace(PROBE, interval=0),
        public_url=public_url,
        self_heal=SelfHealPolicy(after_failures=0),
    )
    try:
        async with up(settings) as engine:
            await wait_until(lambda: len(requests) >= 3, 10, "three checks")
            assert engine.state.public_url_result is PublicUrlResult.WRONG_ANSWER
    finally:
        await runner.cleanup()
    assert requests[0] == PROBE.path
    warnings = [r for r in caplog.records if r.getMessage().startswith("Public URL")]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert warnings[0].getMessage().endswith("fails: wrong_answer")


async def test_silence_is_a_timeout(tunnel: Tunnel, silent_server: SilentServer) -> None:
    check = public_url_of(tunnel, f"http://{LOOPBACK}:{silent_server.port}")
    short = replace(PROBE, timeout=0.5)
    assert await check_public_url(check, short) is PublicUrlResult.TIMEOUT


async def test_a_name_that_does_not_exist(tunnel: Tunnel) -> None:
    check = public_url_of(tunnel, "https://home.invalid")
    assert await check_public_url(check, PROBE) is PublicUrlResult.NAME_NOT_FOUND


# Through Home Assistant: the option, the sensor, the device and the repair.

# The defaults as the form takes them: an empty box is no value.
OPTIONS = {option: value for option, value in DEFAULT_OPTIONS.items() if value not in ("", 0)}


async def test_the_options_refuse_a_bad_url_and_keep_a_good_one_plainly(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load(hass, entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    refused = await hass.config_entries.options.async_configure(
        form["flow_id"], {**OPTIONS, "public_url": "https://home.example.com/lovelace"}
    )
    assert refused["errors"] == {"public_url": "invalid_public_url"}
    assert entry.options == DEFAULT_OPTIONS
    done = await hass.config_entries.options.async_configure(
        form["flow_id"], {**OPTIONS, "public_url": " HTTPS://Home.Example.com:443/ "}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["public_url"] == PUBLIC_URL
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def plain_proxy(
    socket_enabled: None, tmp_path: Path, entry: MockConfigEntry
) -> AsyncIterator[Nginx]:
    """nginx in front of the entry's tunnel port, over HTTP."""
    server = Nginx(
        tmp_path / "nginx", f"proxy_pass http://{LOOPBACK}:{entry.data[CONF_REMOTE_PORT]};"
    )
    server.start()
    await wait_for_port(server.port, accepting=True, timeout=10)
    yield server
    server.stop()


async def load_with_public_url(
    hass: HomeAssistant, entry: MockConfigEntry, public_url: str
) -> None:
    hass.config_entries.async_update_entry(
        entry, options={**DEFAULT_OPTIONS, "public_url": public_url}
    )
    await load(hass, entry)


def reachable_sensor(hass: HomeAssistant) -> State:
    state = hass.states.get(REACHABLE)
    assert state is not None
    return state


async def test_home_assistant_answers_at_its_public_url(
    hass: HomeAssistant, entry: MockConfigEntry, plain_proxy: Nginx
) -> None:
    public_url = f"http://{LOOPBACK}:{plain_proxy.port}"
    await load_with_public_url(hass, entry, public_url)
    await wait_until(
        lambda: reachable_sensor(hass).attributes.get("public_url_reason") == "reachable",
        15,
        "public URL reachable",
    )
    sensor = reachable_sensor(hass)
    assert sensor.state == STATE_ON
    assert sensor.attributes["reason"] == "reachable"
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, entry.entry_id)})
    assert device is not None
    assert device.configuration_url == public_url


async def test_a_public_url_that_fails_turns_the_sensor_off(
    hass: HomeAssistant, entry: MockConfigEntry, dns_resolver: None
) -> None:
    await load_with_public_url(hass, entry, "http://home.invalid")
    await wait_until(
        lambda: reachable_sensor(hass).attributes.get("public_url_reason")
        not in (None, "not_probed_yet", "tunnel_down"),
        15,
        "public URL checked",
    )
    sensor = reachable_sensor(hass)
    assert sensor.attributes["public_url_reason"] == "name_not_found"
    assert sensor.attributes["reason"] == "reachable"  # the direct check stays as it is
    assert sensor.state == STATE_OFF


async def test_without_a_public_url_the_sensor_has_no_such_reason(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await load_with_public_url(hass, entry, "")
    await wait_until(
        lambda: reachable_sensor(hass).attributes.get("reason") == "reachable", 15, "checked"
    )
    assert "public_url_reason" not in reachable_sensor(hass).attributes


async def start_fix(
    hass_client: ClientSessionGenerator, issue_id: str
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Open the repair's fix flow through Home Assistant's API, as the UI does; returns submit."""
    http = await hass_client()
    started = await http.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    form = await started.json()
    assert form["step_id"] == "confirm"

    async def submit() -> dict[str, Any]:
        done = await http.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
        result: dict[str, Any] = await done.json()
        return result

    return submit


@pytest.fixture
def other_external_url(hass: HomeAssistant) -> None:
    hass.config.external_url = "https://old.example.org:8123"


async def test_the_repair_makes_the_public_url_home_assistants_external_url(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    other_external_url: None,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load_with_public_url(hass, entry, PUBLIC_URL)
    issue_id = f"external_url_differs_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": entry.title,
        "public_url": PUBLIC_URL,
        "external_url": "https://old.example.org:8123",
    }
    submit = await start_fix(hass_client, issue_id)
    assert (await submit())["type"] == "create_entry"
    assert hass.config.external_url == PUBLIC_URL
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize(
    ("external_url", "issue_expected"),
    [
        (PUBLIC_URL, False),
        (f"{PUBLIC_URL}/", False),  # written another way, the same URL
        (f"{PUBLIC_URL}:8443", True),
        (f"{PUBLIC_URL}/home", True),  # not where visitors arrive
        (None, True),
    ],
)
async def test_the_repair_appears_only_when_external_url_differs(
    hass: HomeAssistant, entry: MockConfigEntry, external_url: str | None, issue_expected: bool
) -> None:
    hass.config.external_url = external_url
    await load_with_public_url(hass, entry, PUBLIC_URL)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"external_url_differs_{entry.entry_id}")
    assert (issue is not None) is issue_expected


async def test_setting_external_url_by_hand_clears_the_repair(
    hass: HomeAssistant, entry: MockConfigEntry, other_external_url: None
) -> None:
    await load_with_public_url(hass, entry, PUBLIC_URL)
    issue_id = f"external_url_differs_{entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await hass.config.async_update(external_url=f"{PUBLIC_URL}/")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_the_repair_goes_with_the_entry(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    other_external_url: None,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await load_with_public_url(hass, entry, PUBLIC_URL)
    issue_id = f"external_url_differs_{entry.entry_id}"
    submit = await start_fix(hass_client, issue_id)
    await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert (await submit())["reason"] == "entry_removed"
    assert hass.config.external_url == "https://old.example.org:8123"
