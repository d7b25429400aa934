"""The Home Assistant side of the public URL: the check's session, and the external_url repair.

Home Assistant's companion app, notifications and the links it sends use its `external_url`:
when that is not the URL visitors use through the tunnel, a repair offers to set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import voluptuous as vol

from homeassistant.components.repairs import RepairsFlow
from homeassistant.const import EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_PUBLIC_URL, DOMAIN
from .engine import InvalidPublicUrl, PublicUrlCheck, parse_public_url, system_tls_context
from .runtime_data import SshCallhomeConfigEntry

EXTERNAL_URL_DIFFERS = "external_url_differs"


async def async_public_url_check(
    hass: HomeAssistant, options: Mapping[str, Any]
) -> PublicUrlCheck | None:
    """The check of the entry's public URL through Home Assistant's shared HTTP session."""
    if not options[CONF_PUBLIC_URL]:
        return None
    # Loading the system's CAs reads files: not on the event loop.
    tls = await hass.async_add_executor_job(system_tls_context)
    return PublicUrlCheck(
        url=options[CONF_PUBLIC_URL], session=partial(async_get_clientsession, hass), tls=tls
    )


def external_url_issue_id(entry_id: str) -> str:
    """The repair of one entry (named as every issue of this integration: kind, then entry)."""
    return f"{EXTERNAL_URL_DIFFERS}_{entry_id}"


@callback
def async_follow_external_url(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
    """Raise or clear the repair now, and again whenever Home Assistant's URLs change."""
    async_sync_external_url_issue(hass, entry)

    @callback
    def core_config_updated(_event: Event[Any]) -> None:
        async_sync_external_url_issue(hass, entry)

    entry.async_on_unload(hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, core_config_updated))
    entry.async_on_unload(
        partial(ir.async_delete_issue, hass, DOMAIN, external_url_issue_id(entry.entry_id))
    )


@callback
def async_sync_external_url_issue(hass: HomeAssistant, entry: SshCallhomeConfigEntry) -> None:
    """The repair exists exactly while a public URL is set and external_url is another one."""
    public_url: str = entry.options.get(CONF_PUBLIC_URL, "")
    issue_id = external_url_issue_id(entry.entry_id)
    if not public_url or _same_url(hass.config.external_url, public_url):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=EXTERNAL_URL_DIFFERS,
        translation_placeholders=_placeholders(hass, entry.title, public_url),
        data={"entry_id": entry.entry_id, "public_url": public_url},
    )


def _same_url(external_url: str | None, public_url: str) -> bool:
    """Whether external_url is the public URL, written the same way or not."""
    if external_url is None:
        return False
    try:
        return parse_public_url(external_url) == public_url
    except InvalidPublicUrl:  # a path in external_url: not where visitors arrive
        return False


def _placeholders(hass: HomeAssistant, title: str, public_url: str) -> dict[str, str]:
    return {
        "title": title,
        "public_url": public_url,
        "external_url": hass.config.external_url or "not set",
    }


class ExternalUrlRepairFlow(RepairsFlow):
    """Shows both URLs; confirming sets external_url through Home Assistant's own config API."""

    def __init__(self, entry_id: str, public_url: str) -> None:
        self._entry_id = entry_id
        self._public_url = public_url

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Set external_url once the user agrees; the change clears the repair."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is not None:
            await self.hass.config.async_update(external_url=self._public_url)
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=_placeholders(self.hass, entry.title, self._public_url),
        )
