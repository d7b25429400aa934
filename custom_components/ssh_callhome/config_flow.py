"""Config flow: server, a pasted or generated key, the host key to confirm and pin, a real check.

New entries, reauth and reconfigure share the steps: whatever the way in, the flow ends only
after a real connection with the pinned host key has taken the forward once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncssh

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers.typing import DiscoveryInfoType

from .addon import (
    CallHomeAddon,
    addon_holding_port,
    async_find_addons,
    preferred_addon,
    takes_addon_options,
)
from .authorize import authorize_placeholders, server_software
from .builder import async_engine_input
from .const import (
    ADDON_SLUG,
    CONF_HOST_KEY,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_REMOTE_PORT,
    CONF_SERVER_SOFTWARE,
    DEFAULT_OPTIONS,
    DOMAIN,
    ENTRY_MINOR_VERSION,
    ENTRY_VERSION,
)
from .engine import (
    ServerSoftware,
    check_tunnel,
    export_host_key,
    fetch_host_key,
    fingerprint,
    generate_private_key,
    load_host_key,
)
from .flow_forms import (
    GENERATE_SCHEMA,
    KEY_SCHEMA,
    PASTE_SCHEMA,
    RECONFIGURE_SCHEMA,
    FormError,
    KeyRejected,
    StepForm,
    async_client_key,
    async_server_call,
    check_server_fields,
    normalized,
    unique_id,
)
from .options_flow import SshCallhomeOptionsFlow
from .runtime_data import SshCallhomeConfigEntry

# How long the flow waits for the server before it says it cannot connect.
FLOW_TIMEOUT = 15.0

_KEY_FIELDS = (CONF_PRIVATE_KEY, CONF_PASSPHRASE)


def _without_key(data: Mapping[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in data.items() if field not in _KEY_FIELDS}


def _key_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in data.items() if field in _KEY_FIELDS}


def _software_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in data.items() if field == CONF_SERVER_SOFTWARE}


class SshCallhomeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up, re-key or reconfigure a tunnel."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = ENTRY_MINOR_VERSION

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._client_key: asyncssh.SSHKey | None = None
        self._host_key: asyncssh.SSHKey | None = None
        self._confirmed_host_key: str | None = None
        # The key made for this flow, once: the one in use whenever `_client_key` is it.
        self._generated_key: asyncssh.SSHKey | None = None
        self._generated_text = ""
        # The form a failed check returns to, set where the server was first contacted.
        self._server_form: StepForm | None = None
        # The SSH Call Home add-on found on this install, and whether this flow imports it.
        self._addon: CallHomeAddon | None = None
        self._importing_addon = False

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SshCallhomeConfigEntry) -> OptionsFlow:
        """Keepalive, bind address and backoff of an entry."""
        return SshCallhomeOptionsFlow()

    # New entries -------------------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Paste an existing key, or have one generated; or import the add-on, if installed."""
        self._addon = preferred_addon(await async_find_addons(self.hass))
        menu_options = ["paste_key", "generate_key"]
        if self._addon is not None:
            menu_options.insert(0, "import_addon")
        return self.async_show_menu(step_id="user", menu_options=menu_options)

    async def async_step_paste_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The server, the account and a key the user already has."""
        form = StepForm("paste_key", PASTE_SCHEMA, user_input or {})
        if user_input is None:
            return self._show(form)
        try:
            data = await self._async_new_entry_data(user_input)
            self._client_key = await async_client_key(self.hass, data)
            return await self._async_meet_server(data, form)
        except FormError as error:
            return self._show(form, error)

    async def async_step_generate_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The server and the account; the key is made here and shown for authorized_keys."""
        form = StepForm("generate_key", GENERATE_SCHEMA, user_input or {})
        if user_input is None:
            return self._show(form)
        try:
            data = await self._async_new_entry_data(user_input)
            return await self._async_meet_server(
                {**data, **await self._async_use_generated_key()}, form
            )
        except FormError as error:
            return self._show(form, error)

    async def _async_new_entry_data(
        self, user_input: Mapping[str, Any], *, raise_on_progress: bool = True
    ) -> dict[str, Any]:
        data = normalized(user_input)
        check_server_fields(data)
        await self.async_set_unique_id(unique_id(data), raise_on_progress=raise_on_progress)
        self._abort_if_unique_id_configured()
        return data

    # Coming from the add-on ----------------------------------------------------------------

    async def async_step_integration_discovery(
        self, discovery_info: DiscoveryInfoType
    ) -> ConfigFlowResult:
        """The add-on found when Home Assistant started, offered until imported or ignored."""
        addon = await self._async_addon_as_it_is(discovery_info[ADDON_SLUG])
        await self.async_set_unique_id(unique_id(addon.server))
        self._abort_if_unique_id_configured()
        entries = self._async_current_entries(include_ignore=False)
        if any(addon.tunnels_like(entry.data) for entry in entries):
            # Imported already, perhaps under an account of the tunnel's own.
            return self.async_abort(reason="already_configured")
        self._addon = addon
        self.context["title_placeholders"] = {"name": addon.name}
        return await self.async_step_import_addon()

    async def async_step_import_addon(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The add-on's server and account, filled in to check; its key is taken as it is."""
        addon = self._addon
        if addon is None:
            return self.async_abort(reason="addon_not_found")
        if user_input is not None:
            # The form may have waited for days (under Discovered): the add-on as it is now.
            addon = self._addon = await self._async_addon_as_it_is(addon.slug)
        placeholders = {"addon": addon.name}
        form = StepForm("import_addon", GENERATE_SCHEMA, user_input or addon.server, placeholders)
        if user_input is None:
            return self._show(form)
        try:
            data = await self._async_new_entry_data(user_input, raise_on_progress=False)
            if addon.logs_in_as(data):
                data[CONF_PRIVATE_KEY] = addon.private_key
                self._client_key = await self._async_addon_key(data)
            else:
                # The add-on's key keeps its unrestricted line on the add-on's account and server,
                # which the script for another account or server never touches: that key must not
                # become the tunnel's.
                data = {**data, **await self._async_use_generated_key()}
            self._importing_addon = True
            return await self._async_meet_server(data, form)
        except FormError as error:
            return self._show(form, error)

    async def _async_addon_as_it_is(self, slug: str) -> CallHomeAddon:
        """The add-on `slug` as the Supervisor has it now; the flow ends when it is gone.

        Gone means removed, no longer answering, or with options that no form takes.
        """
        addon = next((a for a in await async_find_addons(self.hass) if a.slug == slug), None)
        if addon is None:
            raise AbortFlow("addon_not_found")
        if not takes_addon_options(addon):
            raise AbortFlow("addon_options_invalid")
        return addon

    async def _async_addon_key(self, data: Mapping[str, Any]) -> asyncssh.SSHKey:
        """The add-on's key, loaded as a pasted one; the form has no key field to blame."""
        try:
            return await async_client_key(self.hass, data)
        except FormError as error:
            unusable = "addon_key_too_long" if error.key == "key_too_long" else "addon_key_unusable"
            raise FormError("base", unusable) from None

    async def _async_verify_addon_import(self) -> ConfigFlowResult:
        """Check for real; an add-on still holding the port is no error, a repair stops it."""
        try:
            await self._async_check_tunnel()
        except KeyRejected as rejected:
            return self._show_authorize(rejected)
        except FormError as error:
            if not await self._async_refusal_is_the_addons(error):
                return self._show(self._required(self._server_form), error)
        return await self.async_step_addon_authorize()

    async def _async_refusal_is_the_addons(self, error: FormError) -> bool:
        """Whether `error` is a refused forward while importing, an add-on holding the port.

        The add-on is asked now: it may have stopped since the form opened.
        """
        if error.key != "forward_refused" or not self._importing_addon:
            return False
        return addon_holding_port(await async_find_addons(self.hass), self._data) is not None

    async def async_step_addon_authorize(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The restricted line the add-on never had, to replace its key's line with; then done."""
        if user_input is not None:
            return self._async_finish()
        addon = self._required(self._addon)
        placeholders = authorize_placeholders(
            self._required(self._client_key),
            self._data,
            self._entry_options(),
            self.hass.config.location_name,
        )
        return self.async_show_form(
            step_id="addon_authorize",
            description_placeholders={
                **placeholders,
                "addon": addon.name,
                "remote_port": str(self._data[CONF_REMOTE_PORT]),
            },
        )

    # Re-keying ---------------------------------------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The server rejected the stored key: the server stays, the key is replaced."""
        self._data = _without_key(entry_data)
        self._host_key = load_host_key(entry_data[CONF_HOST_KEY])
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Paste another key, or have one generated."""
        return self.async_show_menu(
            step_id="reauth_confirm",
            menu_options=["reauth_paste_key", "reauth_generate_key"],
            description_placeholders={"account": self._get_reauth_entry().title},
        )

    async def async_step_reauth_paste_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A key the user already has."""
        form = StepForm("reauth_paste_key", KEY_SCHEMA, {})
        if user_input is None:
            return self._show(form)
        try:
            key_fields = normalized(user_input)
            self._client_key = await async_client_key(self.hass, key_fields)
        except FormError as error:
            return self._show(form, error)
        self._data = {**self._data, **key_fields}
        return await self._async_verify(form)

    async def async_step_reauth_generate_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new key, shown for authorized_keys."""
        self._data = {**self._data, **await self._async_use_generated_key()}
        return await self.async_step_authorize()

    # Reconfiguring -----------------------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server, account, remote port or key; a new server is confirmed anew."""
        entry = self._get_reconfigure_entry()
        form = StepForm("reconfigure", RECONFIGURE_SCHEMA, user_input or entry.data)
        if user_input is None:
            return self._show(form)
        try:
            data = normalized(user_input)
            check_server_fields(data)
            self._check_unique_id_free(entry, unique_id(data))
            if CONF_PRIVATE_KEY not in data:
                data |= _key_of(entry.data)
            self._client_key = await async_client_key(self.hass, data)
            if (data[CONF_HOST], data[CONF_PORT]) == (entry.data[CONF_HOST], entry.data[CONF_PORT]):
                # The same server: the software it was found to be still holds.
                self._data = data | _software_of(entry.data)
                self._host_key = load_host_key(entry.data[CONF_HOST_KEY])
                return await self._async_verify(form)
            return await self._async_meet_server(data, form)
        except FormError as error:
            return self._show(form, error)

    def _check_unique_id_free(self, entry: ConfigEntry, new_unique_id: str) -> None:
        if new_unique_id == entry.unique_id:
            return
        if self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, new_unique_id):
            raise FormError("base", "already_configured")

    # Shared steps ------------------------------------------------------------------------------

    async def _async_meet_server(self, data: dict[str, Any], form: StepForm) -> ConfigFlowResult:
        """Fetch the host key; the user confirms it unless this flow confirmed it already."""
        server = await async_server_call(
            fetch_host_key(data[CONF_HOST], data[CONF_PORT], FLOW_TIMEOUT)
        )
        self._host_key = server.host_key
        self._data = {**data, CONF_SERVER_SOFTWARE: server.software.value}
        self._server_form = form
        if self._confirmed_host_key == export_host_key(self._host_key):
            return await self._async_after_confirm()
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the server's host-key fingerprint; continuing pins it."""
        host_key = self._required(self._host_key)
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                description_placeholders={
                    "fingerprint": fingerprint(host_key),
                    "algorithm": host_key.get_algorithm(),
                    "server": f"{self._data[CONF_HOST]}:{self._data[CONF_PORT]}",
                },
            )
        self._confirmed_host_key = export_host_key(host_key)
        return await self._async_after_confirm()

    async def _async_after_confirm(self) -> ConfigFlowResult:
        if self._using_generated_key():
            # A key made a moment ago cannot be on the server yet.
            return await self.async_step_authorize()
        if self._importing_addon:
            return await self._async_verify_addon_import()
        return await self._async_verify(self._required(self._server_form))

    async def async_step_authorize(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the restricted authorized_keys line; submitting checks that the server took it."""
        if user_input is None:
            return self._show_authorize()
        try:
            await self._async_check_tunnel()
        except FormError as error:
            if not await self._async_refusal_is_the_addons(error):
                return self._show_authorize(error)
        return self._async_finish()

    # Dropbear gets a form of its own, for its own text; submitting it does the same.
    async_step_authorize_dropbear = async_step_authorize

    def _show_authorize(self, error: FormError | None = None) -> ConfigFlowResult:
        """The line and server settings in the syntax of the server the flow met."""
        dropbear = server_software(self._data) is ServerSoftware.DROPBEAR
        errors = error.errors if error else {}
        if dropbear and isinstance(error, KeyRejected):
            errors = {error.field: "invalid_auth_dropbear"}
        return self.async_show_form(
            step_id="authorize_dropbear" if dropbear else "authorize",
            errors=errors,
            description_placeholders=authorize_placeholders(
                self._required(self._client_key),
                self._data,
                self._entry_options(),
                self.hass.config.location_name,
            ),
        )

    async def _async_verify(self, form: StepForm) -> ConfigFlowResult:
        """Check for real; a rejected key leads to the authorize step, other errors to `form`."""
        try:
            await self._async_check_tunnel()
        except KeyRejected as rejected:
            return self._show_authorize(rejected)
        except FormError as error:
            return self._show(form, error)
        return self._async_finish()

    async def _async_check_tunnel(self) -> None:
        """Connect with the pinned host key and take the forward for real, then release it."""
        keys = (self._required(self._client_key), self._required(self._host_key))
        engine = await async_engine_input(self.hass, self._data, self._entry_options(), keys)
        await async_server_call(check_tunnel(engine.settings))

    def _async_finish(self) -> ConfigFlowResult:
        data = {**self._data, CONF_HOST_KEY: export_host_key(self._required(self._host_key))}
        if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            entry = self._existing_entry()
            return self.async_update_reload_and_abort(entry, unique_id=unique_id(data), data=data)
        return self.async_create_entry(
            title=f"{data[CONF_USERNAME]}@{data[CONF_HOST]}",
            data=data,
            options=dict(DEFAULT_OPTIONS),
        )

    # Helpers -----------------------------------------------------------------------------------

    async def _async_use_generated_key(self) -> dict[str, Any]:
        """Put the generated key in use and return its fields, for the data the flow stores.

        Made once per flow: retries must not replace a key already on the server. The key in use
        and the text stored change together, here, so that a form resubmitted with another
        account (the add-on's key, then a generated one again) never checks one and stores the
        other.
        """
        if self._generated_key is None:
            text = await self.hass.async_add_executor_job(generate_private_key)
            self._generated_key = asyncssh.import_private_key(text)
            self._generated_text = text
        self._client_key = self._generated_key
        return {CONF_PRIVATE_KEY: self._generated_text}

    def _using_generated_key(self) -> bool:
        return self._generated_key is not None and self._client_key is self._generated_key

    def _entry_options(self) -> Mapping[str, Any]:
        """The options the tunnel runs with: the entry's, or for a new entry the defaults."""
        if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            return self._existing_entry().options
        return DEFAULT_OPTIONS

    def _existing_entry(self) -> ConfigEntry:
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry()
        return self._get_reconfigure_entry()

    def _show(self, form: StepForm, error: FormError | None = None) -> ConfigFlowResult:
        """The step's form, filled in with the values it holds and showing `error`.

        The pasted key and its passphrase are never filled in: they would go back to the
        browser with every form shown again after an error.
        """
        return self.async_show_form(
            step_id=form.step_id,
            data_schema=self.add_suggested_values_to_schema(form.schema, _without_key(form.values)),
            errors=error.errors if error else {},
            description_placeholders=form.placeholders,
        )

    @staticmethod
    def _required[T](value: T | None) -> T:
        assert value is not None  # set by the step that led here
        return value
