"""A form shown again after an error sends no pasted key and no passphrase back to the browser."""

from __future__ import annotations

import json
from typing import Any

import asyncssh
import pytest
import voluptuous_serialize

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import CONF_PASSPHRASE, CONF_PRIVATE_KEY, DOMAIN
from harness.network import free_port
from harness.secrets import SecretRecorder

PASSPHRASE = "correct horse battery"

pytestmark = pytest.mark.usefixtures("ha_http_port")


@pytest.fixture
def encrypted_key_text(client_key: asyncssh.SSHKey) -> str:
    return client_key.export_private_key("openssh", PASSPHRASE, rounds=16).decode()


@pytest.fixture
def secrets(encrypted_key_text: str) -> SecretRecorder:
    """The pasted text's lines and the passphrase: none may be in a form."""
    recorder = SecretRecorder()
    recorder.add_key_text(encrypted_key_text)
    recorder.secrets.add(PASSPHRASE)
    return recorder


def as_the_frontend_gets_it(form: ConfigFlowResult) -> str:
    """The form's schema serialized as Home Assistant's flow view sends it."""
    assert form["type"] is FlowResultType.FORM
    schema = voluptuous_serialize.convert(
        form["data_schema"], custom_serializer=cv.custom_serializer
    )
    return json.dumps(schema)


async def paste_key_form(hass: HomeAssistant) -> ConfigFlowResult:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "paste_key"}
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({CONF_HOST: "my server"}, {CONF_HOST: "invalid_host"}),
        ({CONF_PASSPHRASE: "battery staple"}, {CONF_PASSPHRASE: "wrong_passphrase"}),
        ({CONF_PORT: free_port()}, {"base": "cannot_connect"}),
    ],
)
async def test_a_form_shown_again_carries_no_secret(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    encrypted_key_text: str,
    secrets: SecretRecorder,
    changes: dict[str, Any],
    error: dict[str, str],
) -> None:
    form = await paste_key_form(hass)
    typed = {
        **user_input,
        CONF_PRIVATE_KEY: encrypted_key_text,
        CONF_PASSPHRASE: PASSPHRASE,
        **changes,
    }
    again = await hass.config_entries.flow.async_configure(form["flow_id"], typed)
    assert again["errors"] == error
    sent = as_the_frontend_gets_it(again)
    assert secrets.leaks([sent]) == []
    # The other fields keep what the user typed, so nothing else has to be typed again.
    assert json.dumps(typed[CONF_USERNAME]) in sent
    assert json.dumps(typed[CONF_HOST]) in sent


async def test_a_reconfigure_form_shown_again_carries_no_secret(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    user_input: dict[str, Any],
    encrypted_key_text: str,
    secrets: SecretRecorder,
) -> None:
    form = await entry.start_reconfigure_flow(hass)
    # The first form is filled in from the entry, which holds the stored key.
    secrets.add_key_text(entry.data[CONF_PRIVATE_KEY])
    assert secrets.leaks([as_the_frontend_gets_it(form)]) == []
    typed = {
        **user_input,
        CONF_HOST: "my server",
        CONF_PRIVATE_KEY: encrypted_key_text,
        CONF_PASSPHRASE: PASSPHRASE,
    }
    again = await hass.config_entries.flow.async_configure(form["flow_id"], typed)
    assert again["errors"] == {CONF_HOST: "invalid_host"}
    sent = as_the_frontend_gets_it(again)
    assert secrets.leaks([sent]) == []
    assert json.dumps("my server") in sent
