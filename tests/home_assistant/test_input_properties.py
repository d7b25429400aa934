"""Whatever a user (or a script talking to the REST API) types: a form error or a valid entry,
never an exception, and nothing stored from a failed attempt."""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest
import voluptuous as vol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.const import (
    CONF_EXTRA_FORWARDS,
    CONF_HOST_KEY,
    CONF_MODE,
    CONF_PASSPHRASE,
    CONF_PRIVATE_KEY,
    CONF_TARGET_HOST,
    CONF_TARGET_PORT,
    DEFAULT_OPTIONS,
    DOMAIN,
    MODE_TCP,
)
from custom_components.ssh_callhome.engine.extras import InvalidExtraForward, parse_extra_forwards
from custom_components.ssh_callhome.engine.keys import (
    InvalidKey,
    KeyProblem,
    WrongPassphrase,
    load_private_key,
)
from custom_components.ssh_callhome.flow_forms import (
    PORT_NUMBER,
    FormError,
    check_server_fields,
    normalized,
)
from harness.network import LOOPBACK, free_port

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
PORTS = st.integers(min_value=-(2**40), max_value=2**40)
# Every code point, lone surrogates (category Cs) included: what a script may send.
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(alphabet=ANY_CHARACTER, max_size=300)
# Port-like text: ASCII digits, and digits of other scripts that `isdigit()` accepts too.
DIGITS = st.characters(codec=None, categories=("Nd", "No"))
PORT_TEXT = st.one_of(
    st.integers(min_value=0, max_value=70_000).map(str),
    st.text(alphabet=st.one_of(DIGITS, st.sampled_from("0123456789")), min_size=1, max_size=6),
)
FORWARD_LINE = st.builds(
    "{}:{}:{}{}".format,
    PORT_TEXT,
    st.one_of(st.just(LOOPBACK), st.text(alphabet=ANY_CHARACTER, max_size=20)),
    PORT_TEXT,
    st.sampled_from(["", " proxy-v2", "\tproxy-v2", " proxy", " proxy-v2 x"]),
)
EXTRA_FORWARDS = st.one_of(ANY_TEXT, st.lists(FORWARD_LINE, max_size=4).map("\n".join))
# Each example drives a real flow: fewer of them, and the hass fixture is shared on purpose.
FLOW_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _form_errors(data: dict[str, Any]) -> dict[str, str]:
    try:
        check_server_fields(data)
    except FormError as error:
        return error.errors
    return {}


@settings(max_examples=300, deadline=None)
@given(host=TEXT, username=TEXT)
def test_server_fields_are_accepted_or_a_field_error(host: str, username: str) -> None:
    data = normalized({CONF_HOST: host, CONF_USERNAME: username})
    errors = _form_errors(data)
    if errors:
        assert set(errors) <= {CONF_HOST, CONF_USERNAME}
    else:
        assert data[CONF_HOST]
        assert not any(char.isspace() for char in data[CONF_HOST])


@settings(max_examples=300, deadline=None)
@given(port=st.one_of(PORTS, st.floats(allow_nan=True, allow_infinity=True), PORT_TEXT, TEXT))
def test_port_field_gives_a_port_or_refuses(port: object) -> None:
    """The form's port box: an int from 1 to 65535, or the schema's field error."""
    try:
        accepted = PORT_NUMBER(port)
    except vol.Invalid:
        return
    assert type(accepted) is int
    assert 1 <= accepted <= 65535


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(ANY_TEXT, st.binary(max_size=4096).map(lambda raw: raw.decode("latin-1"))),
    passphrase=st.one_of(st.none(), ANY_TEXT),
)
def test_key_text_loads_or_is_a_key_problem(text: str, passphrase: str | None) -> None:
    try:
        outcome: object = load_private_key(text, passphrase)
    except KeyProblem as problem:
        outcome = problem
    assert isinstance(outcome, KeyProblem | asyncssh.SSHKey)


@settings(max_examples=300, deadline=None)
@given(text=EXTRA_FORWARDS)
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
    {CONF_HOST: "ho\ud800st"},
    {CONF_USERNAME: "ro\ud800ot"},
    {CONF_PRIVATE_KEY: "\ud800"},
    {CONF_PASSPHRASE: "\ud800"},
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


async def _paste_key_form(hass: HomeAssistant) -> str:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "paste_key"}
    )
    return form["flow_id"]


async def _submit_for_errors(
    hass: HomeAssistant, flow_id: str, user_input: dict[str, Any]
) -> dict[str, str]:
    """Submit; the errors of the form that comes back (a schema error counts as one)."""
    flows = hass.config_entries.flow
    try:
        result = await flows.async_configure(flow_id, user_input)
    except InvalidData as error:
        return dict.fromkeys(error.schema_errors, "schema")
    finally:
        if flow_id in {flow["flow_id"] for flow in flows.async_progress()}:
            flows.async_abort(flow_id)
    assert result["type"] is FlowResultType.FORM, result
    errors = result["errors"]
    assert errors
    return errors


@FLOW_SETTINGS
@given(
    key_text=st.one_of(ANY_TEXT, st.just("")), passphrase=ANY_TEXT, surrogate_at=st.integers(0, 400)
)
async def test_any_key_and_passphrase_through_the_real_flow(
    hass: HomeAssistant,
    socket_enabled: None,
    client_key_text: str,
    key_text: str,
    passphrase: str,
    surrogate_at: int,
) -> None:
    """A key or passphrase that cannot even be encoded is a field error, like any other."""
    # An empty key_text stands for the real key with a lone surrogate pasted into it.
    key = key_text or client_key_text[:surrogate_at] + "\ud800" + client_key_text[surrogate_at:]
    flow_id = await _paste_key_form(hass)
    user_input = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: free_port(),  # nothing listens: only errors are possible
        CONF_USERNAME: "root",
        "remote_port": free_port(),
        CONF_PRIVATE_KEY: key,
        CONF_PASSPHRASE: passphrase,
    }
    errors = await _submit_for_errors(hass, flow_id, user_input)
    assert set(errors) <= {CONF_PRIVATE_KEY, CONF_PASSPHRASE, "base"}
    assert hass.config_entries.async_entries(DOMAIN) == []


@FLOW_SETTINGS
@given(host=ANY_TEXT, username=ANY_TEXT, port=st.one_of(PORTS, PORT_TEXT, ANY_TEXT))
async def test_any_server_fields_through_the_real_flow(
    hass: HomeAssistant, host: str, username: str, port: int | str
) -> None:
    """The key is not one: every example ends before anything is sent anywhere."""
    flow_id = await _paste_key_form(hass)
    user_input = {
        CONF_HOST: host,
        CONF_PORT: port,
        CONF_USERNAME: username,
        "remote_port": port,
        CONF_PRIVATE_KEY: "not a key",
    }
    errors = await _submit_for_errors(hass, flow_id, user_input)
    assert set(errors) <= {CONF_HOST, CONF_USERNAME, CONF_PORT, "remote_port", CONF_PRIVATE_KEY}


@pytest.fixture
def options_entry(
    hass: HomeAssistant, socket_enabled: None, client_key_text: str
) -> MockConfigEntry:
    """An entry whose options are edited: each save reloads it, against a port nobody holds."""
    server_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    data = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: free_port(),
        CONF_USERNAME: "root",
        "remote_port": free_port(),
        CONF_PRIVATE_KEY: client_key_text,
        CONF_HOST_KEY: server_key,
    }
    options = {**DEFAULT_OPTIONS, CONF_MODE: MODE_TCP, CONF_TARGET_HOST: LOOPBACK}
    entry = MockConfigEntry(domain=DOMAIN, data=data, options={**options, CONF_TARGET_PORT: 1})
    entry.add_to_hass(hass)
    return entry


@FLOW_SETTINGS
@given(extra_forwards=EXTRA_FORWARDS)
async def test_any_extra_forwards_through_the_real_options_flow(
    hass: HomeAssistant, options_entry: MockConfigEntry, extra_forwards: str
) -> None:
    form = await hass.config_entries.options.async_init(options_entry.entry_id)
    user_input = {**options_entry.options, CONF_EXTRA_FORWARDS: extra_forwards}
    try:
        result = await hass.config_entries.options.async_configure(form["flow_id"], user_input)
    except InvalidData:
        return
    if result.get("step_id") == "authorize_forwards":
        # Forwards the key's line does not name: the new line is shown, submitting saves.
        result = await hass.config_entries.options.async_configure(form["flow_id"], {})
    if result["type"] is FlowResultType.FORM:
        assert result["errors"] == {CONF_EXTRA_FORWARDS: "invalid_extra_forwards"}
        # The error names a line of what was entered.
        assert (result["description_placeholders"] or {})["bad_forward"] in extra_forwards
        hass.config_entries.options.async_abort(form["flow_id"])
        return
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # Saving reloads the entry: let that finish before the next example, or the test's end.
    await hass.async_block_till_done()
    for forward in parse_extra_forwards(extra_forwards):
        assert 1 <= forward.remote_port <= 65535
        assert 1 <= forward.port <= 65535


@pytest.mark.parametrize("line", ["1²:h:22", "22:h:1²", "٣٣:h:22", "22:h:٣", "22:h\ud800:22"])
def test_ports_in_other_digits_and_unprintable_hosts_are_refused(line: str) -> None:
    with pytest.raises(InvalidExtraForward):
        parse_extra_forwards(line)


def test_text_that_cannot_be_encoded_is_the_key_or_the_passphrase_at_fault(
    client_key_text: str,
) -> None:
    with pytest.raises(InvalidKey):
        load_private_key(client_key_text + "\ud800", None)
    with pytest.raises(WrongPassphrase):
        load_private_key(client_key_text, "pass\ud800phrase")
