"""A stand-in for the Supervisor's client: the one thing the add-on's tests mock.

The Supervisor cannot run here. Its client (aiohasupervisor's `SupervisorClient`, which Home
Assistant's `get_supervisor_client` and `AddonManager` use) is replaced by this one, which
answers with the models the real client makes: built with `from_dict` from JSON shaped as the
Supervisor's API returns it (`GET /addons`, `/addons/<slug>/info`, `/store/addons/<slug>`), so
the integration reads add-ons, states and options exactly as on a real install.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

from aiohasupervisor import SupervisorError
from aiohasupervisor.models import (
    AddonsOptions,
    InstalledAddon,
    InstalledAddonComplete,
    StoreAddonComplete,
)

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, CONF_REMOTE_PORT

# This project's add-on as a Supervisor names it: its repository's hash, then its own slug.
OUR_SLUG = "a0d7b954_ssh_callhome"
OUR_NAME = "SSH Call Home"
# Where the integration and Home Assistant's AddonManager look the client up.
_CLIENT_LOOKUPS = (
    "custom_components.ssh_callhome.addon.get_supervisor_client",
    "homeassistant.components.hassio.addon_manager.get_supervisor_client",
)


@dataclass
class Addon:
    """An installed add-on as the Supervisor knows it."""

    slug: str
    name: str
    options: dict[str, Any]
    started: bool = False
    boot: str = "auto"
    # What stopping it does beyond the Supervisor's own state (the add-on's SSH session ends).
    on_stop: Callable[[], Awaitable[None]] | None = None

    @property
    def state(self) -> str:
        """The Supervisor's word for whether it runs."""
        return "started" if self.started else "stopped"

    def base_json(self) -> dict[str, Any]:
        """The fields every listing of an add-on has."""
        return {
            "advanced": False,
            "available": True,
            "build": False,
            "description": "Reverse SSH tunnel to your own server",
            "detached": False,
            "homeassistant": None,
            "icon": True,
            "logo": True,
            "name": self.name,
            "repository": self.slug.partition("_")[0],
            "slug": self.slug,
            "stage": "stable",
            "update_available": False,
            "url": "https://github.com/example/addons",
            "version_latest": "1.4.0",
            "version": "1.4.0",
        }

    def store_json(self) -> dict[str, Any]:
        """`GET /store/addons/<slug>`: what the store says of it."""
        return {
            **self.base_json(),
            "apparmor": "default",
            "arch": ["aarch64", "amd64"],
            "auth_api": False,
            "docker_api": False,
            "documentation": True,
            "full_access": False,
            "hassio_api": False,
            "hassio_role": "default",
            "homeassistant_api": False,
            "host_network": False,
            "host_pid": False,
            "ingress": False,
            "installed": True,
            "long_description": None,
            "rating": 6,
            "signed": False,
        }

    def info_json(self) -> dict[str, Any]:
        """`GET /addons/<slug>/info`: everything about the installed add-on, options included."""
        store = self.store_json()
        del store["installed"]
        return {
            **store,
            "state": self.state,
            "hostname": self.slug.replace("_", "-"),
            "dns": [],
            "protected": True,
            "boot": self.boot,
            "boot_config": "auto",
            "options": self.options,
            "schema": [],
            "machine": [],
            "network": None,
            "network_description": None,
            "host_ipc": False,
            "host_uts": False,
            "host_dbus": False,
            "privileged": [],
            "changelog": True,
            "stdin": False,
            "gpio": False,
            "usb": False,
            "uart": False,
            "kernel_modules": False,
            "devicetree": False,
            "udev": False,
            "video": False,
            "audio": False,
            "startup": "application",
            "services": [],
            "discovery": [],
            "translations": {},
            "webui": None,
            "ingress_entry": None,
            "ingress_url": None,
            "ingress_port": None,
            "ingress_panel": None,
            "audio_input": None,
            "audio_output": None,
            "auto_update": False,
            "ip_address": "172.30.33.4",
            "watchdog": True,
            "devices": [],
            "system_managed": False,
            "system_managed_config_entry": None,
        }


@dataclass
class FakeSupervisor:
    """The add-ons installed, the calls made, and an error every call raises when set."""

    installed: list[Addon] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    error: SupervisorError | None = None
    # What the integration asked to change of each add-on, as sent (AddonsOptions.to_dict()).
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.addons = _AddonsClient(self)
        self.store = _StoreClient(self)

    def called(self, call: str) -> Addon | None:
        """Record a call and fail it when told to; the add-on a slug names, if it is one."""
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        slug = call.partition(" ")[2]
        return next((addon for addon in self.installed if addon.slug == slug), None)

    def addon(self, call: str) -> Addon:
        found = self.called(call)
        if found is None:
            raise SupervisorError(f"App {call.partition(' ')[2]} is not installed")
        return found


class _AddonsClient:
    """`supervisor_client.addons`."""

    def __init__(self, supervisor: FakeSupervisor) -> None:
        self._supervisor = supervisor

    async def list(self) -> list[InstalledAddon]:
        self._supervisor.called("list")
        return [
            InstalledAddon.from_dict({**addon.base_json(), "state": addon.state})
            for addon in self._supervisor.installed
        ]

    async def addon_info(self, slug: str) -> InstalledAddonComplete:
        addon = self._supervisor.addon(f"info {slug}")
        return InstalledAddonComplete.from_dict(addon.info_json())

    async def stop_addon(self, slug: str) -> None:
        addon = self._supervisor.addon(f"stop {slug}")
        addon.started = False
        if addon.on_stop is not None:
            await addon.on_stop()

    async def set_addon_options(self, slug: str, options: AddonsOptions) -> None:
        addon = self._supervisor.addon(f"options {slug}")
        sent = options.to_dict()
        self._supervisor.changes.append((slug, sent))
        addon.boot = sent.get("boot", addon.boot)
        addon.options = sent.get("options", addon.options)


class _StoreClient:
    """`supervisor_client.store`."""

    def __init__(self, supervisor: FakeSupervisor) -> None:
        self._supervisor = supervisor

    async def addon_info(self, slug: str) -> StoreAddonComplete:
        addon = self._supervisor.addon(f"store {slug}")
        return StoreAddonComplete.from_dict(addon.store_json())


@contextmanager
def supervisor_client_replaced(supervisor: FakeSupervisor) -> Iterator[None]:
    """Every lookup of the Supervisor's client gets `supervisor`."""
    with (
        patch(_CLIENT_LOOKUPS[0], return_value=supervisor),
        patch(_CLIENT_LOOKUPS[1], return_value=supervisor),
    ):
        yield


@contextmanager
def supervisor_install(hass: HomeAssistant, supervisor: FakeSupervisor) -> Iterator[None]:
    """Home Assistant OS or Supervised, as `is_hassio` sees it, with `supervisor` answering."""
    hass.config.components.add("hassio")
    try:
        with supervisor_client_replaced(supervisor):
            yield
    finally:
        hass.config.components.remove("hassio")


def addon_options(user_input: dict[str, Any]) -> dict[str, Any]:
    """The add-on's options for the server, account, ports and key of a flow's `user_input`."""
    return {
        "ssh_host": user_input[CONF_HOST],
        "ssh_port": user_input[CONF_PORT],
        "ssh_user": user_input[CONF_USERNAME],
        "remote_port": user_input[CONF_REMOTE_PORT],
        "private_key": user_input[CONF_PRIVATE_KEY],
    }


def our_addon(user_input: dict[str, Any], started: bool = False) -> Addon:
    """This project's add-on, set up with the server, account, ports and key of `user_input`."""
    return Addon(OUR_SLUG, OUR_NAME, addon_options(user_input), started=started)


@contextmanager
def supervisor_with(hass: HomeAssistant, *addons: Addon) -> Iterator[FakeSupervisor]:
    """Home Assistant on a Supervisor (`supervisor_install`) with `addons` installed."""
    supervisor = FakeSupervisor(installed=list(addons))
    with supervisor_install(hass, supervisor):
        yield supervisor
