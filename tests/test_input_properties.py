"""Whatever a user (or a script talking to the REST API) types: a form error or a valid entry,
never an exception, and nothing stored from a failed attempt."""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData

from custom_components.ssh_callhome.const import CONF_PASSPHRASE, CONF_PRIVATE_KEY, DOMAIN
from custom_components.ssh_callhome.extras import InvalidExtraForward, parse_extra_forwards
from custom_components.ssh_callhome.flow_support import FormError, check_server_fields, normalized
from custom_components.ssh_callhome.keys import KeyProblem, load_private_key

from .helpers.network import LOOPBACK, free_port

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
PORTS = st.integers(min_value=-(2**40), max_value=2**40)


def _form_errors(data: dict[str, Any]) -> dict[str, str]:
    try:
        check_server_fields(data)
    except FormError as error:
        return error.errors
    return {}


@settings(max_examples=300, deadline=None)
@given(host=TEXT, username=TEXT, port=PORTS, remote_port=PORTS)
def test_server_fields_are_accepted_or_a_field_error(
    host: str, username: str, port: int, remote_port: int
) -> None:
    data = normalized(
        {CONF_HOST: host, CONF_USERNAME: username, CONF_PORT: port, "remote_port": remote_port}
    )
    errors = _form_errors(data)
    if errors:
        assert set(errors) <= {CONF_HOST, CONF_USERNAME, CONF_PORT, "remote_port"}
    else:
        assert 1 <= port <= 65535
        assert 1 <= remote_port <= 65535
        assert data[CONF_HOST]
        assert not any(char.isspace() for char in data[CONF_HOST])


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(TEXT, st.binary(max_size=4096).map(lambda raw: raw.decode("latin-1"))),
    passphrase=st.one_of(st.none(), TEXT),
)
def test_key_text_loads_or_is_a_key_problem(text: str, passphrase: str | None) -> None:
    try:
        outcome: object = load_private_key(text, passphrase)
    except KeyProblem as problem:
        outcome = problem
    assert isinstance(outcome, KeyProblem | asyncssh.SSHKey)


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_extra_forwards_parse_or_are_refused(text: str) -> None:
    try:
        forwards = parse_extra_forwards(text)
    except InvalidExtraForward:
        return
    assert all(1 <= forward.remote_port <= 65535 for forward in forwards)


NASTY: list[dict[str, Any]] = [
    {CONF_HOST: "ho\x00st"},
    {CONF_HOST: "[::1]"},
    {CONF_HOST: "bücher.example"},
    {CONF_HOST: "a" * 10_000},
    {CONF_USERNAME: "ro\x00ot"},
    {CONF_PORT: "twenty-two"},
    {CONF_PORT: 22.5},
    {CONF_PORT: -1},
    {CONF_PRIVATE_KEY: "\x00" * 100},
    {CONF_PRIVATE_KEY: "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * (1024 * 1024)},
    {CONF_PASSPHRASE: "\x00"},
]


@pytest.mark.parametrize("changes", NASTY)
async def test_nasty_input_through_the_real_flow(
    hass: HomeAssistant, ha_http_port: int, client_key_text: str, changes: dict[str, Any]
) -> None:
    good = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: free_port(),  # nothing listens: a good entry is impossible, only errors
        CONF_USERNAME: "root",
        "remote_port": free_port(),
        CONF_PRIVATE_KEY: client_key_text,
    }
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "paste_key"}
    )
    try:
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"], {**good, **changes}
        )
    except InvalidData:
        return  # refused by the form's own schema, field by field, as the UI shows it
    assert result["type"] is FlowResultType.FORM
    assert result["errors"]
    assert hass.config_entries.async_entries(DOMAIN) == []
