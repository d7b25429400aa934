"""The SSH Call Home add-on, on Home Assistant OS and Supervised: found, read, and stopped.

Users of the add-on move over without retyping anything: its options (`ssh_host`, `ssh_port`,
`ssh_user`, `remote_port`, `private_key`) fill in the config flow, and while it still holds the
remote port a repair offers to stop it. Everything goes through Home Assistant's own Supervisor
helpers (the Supervisor client and `AddonManager`), never the Supervisor's HTTP API by hand.
Without a Supervisor nothing here is called: `is_hassio` is false on Container and Core.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohasupervisor import SupervisorError
from aiohasupervisor.models import AddonBoot, AddonsOptions

from homeassistant.components.hassio.addon_manager import AddonError, AddonManager, AddonState
from homeassistant.components.hassio.handler import get_supervisor_client
from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.hassio import is_hassio
from homeassistant.helpers.start import async_at_started

from .const import ADDON_SLUG, CONF_REMOTE_PORT, DEFAULT_REMOTE_PORT, DEFAULT_SSH_PORT, DOMAIN
from .engine import VALID_PORTS, describe, printable
from .flow_forms import FormError, check_server_fields

_LOGGER = logging.getLogger(__name__)

# The add-on's options, by the name of the entry's field each one fills in.
ADDON_OPTIONS = {
    CONF_HOST: "ssh_host",
    CONF_PORT: "ssh_port",
    CONF_USERNAME: "ssh_user",
    CONF_REMOTE_PORT: "remote_port",
}
ADDON_KEY_OPTION = "private_key"
# Its name with case, spaces and punctuation left out ("SSH Call Home", "ssh-callhome"...).
_ADDON_NAME = "sshcallhome"
# How many add-ons with that name are asked for their options: a user has one, a fork or a
# local copy makes two or three; more than this is no install we know, and each costs a call.
MAX_ADDONS_INSPECTED = 4
# The longest add-on name shown: its author chooses it, and it goes into a flow's title, a
# repair's title and a sensor's attribute; real names ("SSH Call Home (fork)") are under 40.
ADDON_NAME_LIMIT = 64
# Removed from the name before it is shown: what markdown makes a link, an image, a heading,
# emphasis, code, a table or HTML of, in the form and repair texts that render it. The colon
# too, so that no "https://" in the name is turned into a link by itself.
_MARKDOWN_CHARACTERS = re.compile(r"[\\`*_\[\]<>#|~:]")


class AddonUnavailable(Exception):
    """The Supervisor could not do what was asked of the add-on (already logged)."""


@dataclass(frozen=True, slots=True)
class CallHomeAddon:
    """An installed SSH Call Home add-on and what its options say."""

    slug: str
    name: str
    running: bool
    # The config flow's server fields, as the add-on's options fill them in.
    server: dict[str, Any]
    private_key: str = field(repr=False)

    def logs_in_as(self, data: Mapping[str, Any]) -> bool:
        """Whether an entry's `data` names the account the add-on logs in to, on its server.

        Only there is the add-on's key's unrestricted line, which the tunnel's line replaces.
        """
        return self._on_server_of(data) and self.server[CONF_USERNAME] == str(data[CONF_USERNAME])

    def tunnels_like(self, data: Mapping[str, Any]) -> bool:
        """Whether an entry's `data` asks for the add-on's remote port on its server.

        Whatever the account: an import under an account of the tunnel's own holds it too.
        """
        return (
            self._on_server_of(data)
            and int(self.server[CONF_REMOTE_PORT]) == data[CONF_REMOTE_PORT]
        )

    def _on_server_of(self, data: Mapping[str, Any]) -> bool:
        """Whether `data` names the add-on's server: its host (any case) and SSH port."""
        return (
            str(self.server[CONF_HOST]).lower() == str(data[CONF_HOST]).lower()
            and int(self.server[CONF_PORT]) == data[CONF_PORT]
        )

    def holds_port_of(self, data: Mapping[str, Any]) -> bool:
        """Whether the add-on, running, holds the remote port that an entry's `data` asks for."""
        return (
            self.running
            and self.server[CONF_REMOTE_PORT] == data[CONF_REMOTE_PORT]
            and self.server[CONF_HOST].lower() == str(data[CONF_HOST]).lower()
        )


def _named_like_ours(name: str) -> bool:
    return _ADDON_NAME in re.sub(r"[^a-z0-9]", "", name.casefold())


def shown_name(name: str) -> str:
    """The add-on's name made safe to show: one printable line, no markdown, capped.

    A third party's add-on can carry any name; this is the only form of it that leaves here.
    """
    one_line = " ".join(_MARKDOWN_CHARACTERS.sub("", name).split())
    return printable(one_line, ADDON_NAME_LIMIT)


def _port(value: object, default: int) -> int:
    """A port from the add-on's options; anything else is the form's default, to correct."""
    if isinstance(value, int) and not isinstance(value, bool) and value in VALID_PORTS:
        return value
    return default


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _from_options(slug: str, name: str, running: bool, options: Mapping[str, Any]) -> CallHomeAddon:
    return CallHomeAddon(
        slug=slug,
        name=name,
        running=running,
        server={
            CONF_HOST: _text(options[ADDON_OPTIONS[CONF_HOST]]),
            CONF_PORT: _port(options[ADDON_OPTIONS[CONF_PORT]], DEFAULT_SSH_PORT),
            CONF_USERNAME: _text(options[ADDON_OPTIONS[CONF_USERNAME]]),
            CONF_REMOTE_PORT: _port(options[ADDON_OPTIONS[CONF_REMOTE_PORT]], DEFAULT_REMOTE_PORT),
        },
        private_key=options[ADDON_KEY_OPTION] if isinstance(options[ADDON_KEY_OPTION], str) else "",
    )


def _is_ours(options: Mapping[str, Any]) -> bool:
    """Whether an add-on's options are the SSH Call Home add-on's."""
    return {*ADDON_OPTIONS.values(), ADDON_KEY_OPTION} <= options.keys()


def _manager(hass: HomeAssistant, slug: str, name: str = "SSH Call Home") -> AddonManager:
    return AddonManager(hass, _LOGGER, name, slug)


@callback
def async_offer_addon_import(hass: HomeAssistant) -> None:
    """Once Home Assistant has started, a discovered flow for the add-on, if one is installed.

    Started by the integration itself: the add-on sends no Supervisor discovery message. The
    flow shows under Discovered until imported or ignored; it ends by itself when an entry
    already holds the add-on's tunnel.
    """
    if not is_hassio(hass):
        return

    async def async_discover(hass: HomeAssistant) -> None:
        if (addon := preferred_addon(await async_find_addons(hass))) is not None:
            discovery_flow.async_create_flow(
                hass,
                DOMAIN,
                context={"source": SOURCE_INTEGRATION_DISCOVERY},
                data={ADDON_SLUG: addon.slug},
            )

    async_at_started(hass, async_discover)


async def async_find_addons(hass: HomeAssistant) -> list[CallHomeAddon]:
    """The installed SSH Call Home add-ons, whatever their repository; none without any.

    None too without a Supervisor, and when the Supervisor fails to answer: nothing the user
    asked for failed, so that is logged at debug level only.
    """
    if not is_hassio(hass):
        return []
    try:
        return await _async_inspect_addons(hass)
    except (SupervisorError, AddonError) as error:
        _LOGGER.debug("Could not look for the SSH Call Home add-on: %s", describe(error))
        return []


def takes_addon_options(addon: CallHomeAddon) -> bool:
    """Whether the form takes the add-on's server and user as they are.

    Its author's options: checked before any of them names a flow (and, ignored, an entry for
    good) or fills in a form. An add-on whose server or user no form takes is not offered.
    """
    try:
        check_server_fields(addon.server)
    except FormError:
        return False
    return True


def preferred_addon(addons: list[CallHomeAddon]) -> CallHomeAddon | None:
    """The add-on to import: the first running one (a user's tunnel), else the first listed.

    Only among those whose options the form takes: a fork never configured, listed first, must
    not hide the user's own add-on.
    """
    offered = [addon for addon in addons if takes_addon_options(addon)]
    return next((addon for addon in offered if addon.running), next(iter(offered), None))


def addon_holding_port(
    addons: list[CallHomeAddon], data: Mapping[str, Any]
) -> CallHomeAddon | None:
    """The add-on among `addons` that runs holding the port an entry's `data` asks for."""
    return next((addon for addon in addons if addon.holds_port_of(data)), None)


async def _async_inspect_addons(hass: HomeAssistant) -> list[CallHomeAddon]:
    """Every add-on named like ours whose options are ours, in the Supervisor's order.

    All of them, not the first: a stopped fork listed first must not hide the running original.
    """
    installed = await get_supervisor_client(hass).addons.list()
    named = [addon for addon in installed if _named_like_ours(addon.name)]
    found = []
    for addon in named[:MAX_ADDONS_INSPECTED]:
        name = shown_name(addon.name)
        info = await _manager(hass, addon.slug, name).async_get_addon_info()
        if _is_ours(info.options):
            running = info.state is AddonState.RUNNING
            found.append(_from_options(addon.slug, name, running, info.options))
    return found


async def async_addon_still_holds_port(
    hass: HomeAssistant, slug: str, data: Mapping[str, Any]
) -> bool:
    """Whether the add-on `slug`, asked about anew, runs holding the port an entry's `data` asks.

    Raises AddonUnavailable, after logging why once, when the Supervisor does not answer: that
    says nothing about the add-on, unlike its absence.
    """
    try:
        addons = await _async_inspect_addons(hass)
    except (SupervisorError, AddonError) as error:
        _LOGGER.error(  # noqa: TRY400 - one line, no traceback, like every failure
            "Could not look for the add-on %s again: %s", slug, describe(error)
        )
        raise AddonUnavailable from None
    holder = addon_holding_port(addons, data)
    return holder is not None and holder.slug == slug


async def async_retire_addon(hass: HomeAssistant, slug: str) -> None:
    """Turn the add-on's start at boot off, then stop it; its options and itself stay.

    Boot first: should stopping fail, the add-on at least does not take the port again at the
    next boot. Raises AddonUnavailable, after logging why once.
    """
    try:
        await get_supervisor_client(hass).addons.set_addon_options(
            slug, AddonsOptions(boot=AddonBoot.MANUAL)
        )
        await _manager(hass, slug).async_stop_addon()
    except (SupervisorError, AddonError) as error:
        _LOGGER.error(  # noqa: TRY400 - one line, no traceback, like every failure
            "Could not stop the add-on %s: %s", slug, describe(error)
        )
        raise AddonUnavailable from None
