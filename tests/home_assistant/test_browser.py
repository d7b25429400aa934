"""In a real browser, through the tunnel: log in, watch the Tunnel entity follow the server.

Headless Chromium (Debian's package) driven by Playwright; a real Home Assistant process and a
real OpenSSH server. The screenshots it takes are the README's pictures: with UPDATE_PICTURES=1
they replace them in docs/images, otherwise they go to the test's temporary directory, so a test
run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from harness.home_assistant import (
    DEMO_PASSWORD,
    DEMO_USER,
    REPOSITORY,
    HomeAssistantProcess,
    add_tunnel_entry,
)
from harness.integration import TUNNEL
from harness.network import LOOPBACK, free_port
from harness.openssh import OpenSSHServer

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
README_PICTURES = REPOSITORY / "docs" / "images"
# What the probe found on this machine: Chromium's own requests for Google services fail.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Stack:
    """sshd, Home Assistant, and the tunnel entry between them."""

    def __init__(self, directory: Path) -> None:
        self.sshd = OpenSSHServer(directory / "sshd", [])
        self.ha = HomeAssistantProcess(directory / "config")
        self.remote_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.remote_port}"

    def wait_for_state(self, state: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.ha.state(TUNNEL) != state:
            assert time.monotonic() < deadline, f"{TUNNEL} never became {state}"
            time.sleep(0.5)


@pytest.fixture
def stack(socket_enabled: None, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path)
    running.sshd.start()
    try:
        running.ha.start()
        running.ha.onboard()
        yield running
    finally:
        running.ha.stop()
        running.sshd.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/install-browser installs Debian's package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def tunnel_shows(page: Page, state: str) -> None:
    """The device page shows the Tunnel entity in `state`."""
    page_shows(page, rf"\bTunnel {state}\b")


def page_shows(page: Page, expression: str, timeout: float = 60) -> None:
    """Wait until the page reads `expression` (a regular expression), as assistive technology
    reads it: that text crosses the frontend's shadow roots."""
    pattern = re.compile(expression)
    deadline = time.monotonic() + timeout
    while not pattern.search(page.locator("body").aria_snapshot()):
        assert time.monotonic() < deadline, f"the page never showed {expression}"
        page.wait_for_timeout(250)


def log_in(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_label("Username").fill(DEMO_USER)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    # Unchecked by default for a remote visitor (as the tunnel makes us): then a reload, as
    # page.goto does, would forget the login.
    page.get_by_label("Keep me logged in").check()
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda address: "/auth/" not in address, timeout=60_000)
    page.wait_for_load_state("networkidle")


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """Where the screenshots go: the README's pictures only when asked to update them."""
    return README_PICTURES if os.environ.get("UPDATE_PICTURES") == "1" else tmp_path


def test_config_flow_shows_the_fingerprint(stack: Stack, page: Page, pictures: Path) -> None:
    log_in(page, f"http://{LOOPBACK}:{stack.ha.port}")
    add = f"http://{LOOPBACK}:{stack.ha.port}/config/integrations/dashboard/add?domain=ssh_callhome"
    # "Do you want to set up SSH Call Home?"; its button keeps animating, so no stability wait,
    # and a click during the animation can be lost: it is repeated until the menu shows. On a
    # loaded machine the first flow of a fresh Home Assistant took more than three tries, and
    # once the dialog closed with no menu at all (no error logged): the page is opened anew then.
    confirm = page.get_by_role("button", name="OK")
    generate = page.get_by_text("Generate a new key for this tunnel")
    for attempt in range(5):
        if not confirm.is_visible() and not generate.is_visible():
            page.goto(add)
            expect(confirm).to_be_visible(timeout=30_000)
        if confirm.is_visible():
            confirm.click(force=True)
        try:
            generate.wait_for(timeout=15_000)
            break
        except PlaywrightTimeoutError:
            page.screenshot(path=pictures / f"menu-not-shown-{attempt}.png")  # for the report
    generate.click()
    page.get_by_label("Host").fill(LOOPBACK)
    page.get_by_label("SSH port").fill(str(stack.sshd.port))
    page.get_by_label("Username").fill(stack.sshd.user)
    page.get_by_label("Remote port").fill(str(stack.remote_port))
    page.get_by_role("button", name="Submit").click()
    title = page.get_by_text("Confirm the server's identity").first
    expect(title).to_be_visible(timeout=30_000)
    expect(page.get_by_text("SHA256:").first).to_be_visible()
    page.screenshot(path=str(pictures / "config-flow-fingerprint.png"))


def test_tunnel_entity_follows_the_server_live_through_the_tunnel(
    stack: Stack, page: Page, pictures: Path
) -> None:
    add_tunnel_entry(stack.ha, stack.sshd, stack.remote_port)
    stack.wait_for_state("on")
    device = "/config/devices/device/" + stack.ha.render(f"{{{{ device_id('{TUNNEL}') }}}}")
    # Through the tunnel: the frontend, the login and the websocket all take the tunnel.
    log_in(page, stack.url)
    page.goto(stack.url + device)
    tunnel_shows(page, "Connected")
    page.screenshot(path=str(pictures / "device-connected.png"))

    # When the server goes, so does every connection through it: watch it from the local port.
    local = page.context.new_page()
    log_in(local, stack.ha.url)
    local.goto(stack.ha.url + device)
    tunnel_shows(local, "Connected")
    stack.sshd.stop()
    tunnel_shows(local, "Disconnected")
    local.screenshot(path=str(pictures / "device-disconnected.png"))
    stack.sshd.start()
    tunnel_shows(local, "Connected")
    # And the page that came through the tunnel reconnects through it by itself: it shows the
    # reconnect that happened while it was cut off.
    page_shows(page, r"Reconnects 1 reconnect", timeout=120)
