"""The leak check that every test runs must itself be able to fail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.secrets import SecretRecorder, record_texts

pytest_plugins = ["pytester"]


def test_a_key_line_in_a_log_is_found(
    no_secret_leaks: SecretRecorder, client_key_text: str
) -> None:
    line = client_key_text.splitlines()[2]
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pasted %s", (line,), None)
    assert no_secret_leaks.leaks(record_texts([record])) == [f"{line[:4]}…"]


def test_a_flattened_key_and_a_passphrase_are_found(
    no_secret_leaks: SecretRecorder, client_key_text: str
) -> None:
    no_secret_leaks.secrets.add("correct horse")
    flattened = " ".join(client_key_text.splitlines())
    texts = [f"bad key {flattened}", "passphrase was correct horse"]
    assert len(no_secret_leaks.leaks(texts)) >= 2
    assert "corr…" in no_secret_leaks.leaks(texts)


# Run by an inner pytest with this project's conftest: each test but the first leaks in its body.
LEAKING_TESTS = """
import logging

import voluptuous as vol
from homeassistant import config_entries
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import (
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
)


def key_line(client_key_text):
    return client_key_text.splitlines()[2]


async def test_leaks_nothing(hass, client_key_text):
    lines = len(client_key_text.splitlines())
    logging.getLogger("inner").warning("pasted a key of %d lines", lines)


def test_logs_it(client_key_text):
    logging.getLogger("inner").warning("pasted %s", key_line(client_key_text))


async def test_fires_it(hass, client_key_text):
    hass.bus.async_fire("inner_event", {"pasted": key_line(client_key_text)})


async def test_returns_it_in_a_form(hass, client_key_text):
    line = key_line(client_key_text)

    class LeakyFlow(config_entries.ConfigFlow):
        async def async_step_user(self, user_input=None):
            schema = vol.Schema({vol.Optional("key"): str})
            return self.async_show_form(
                step_id="user",
                data_schema=self.add_suggested_values_to_schema(schema, {"key": line}),
            )

    mock_integration(hass, MockModule("leaky"))
    mock_platform(hass, "leaky.config_flow", None)
    with mock_config_flow("leaky", LeakyFlow):
        await hass.config_entries.flow.async_init("leaky", context={"source": "user"})


async def test_raises_it_in_a_repair(hass, client_key_text):
    ir.async_create_issue(
        hass,
        "leaky",
        "pasted",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="pasted",
        translation_placeholders={"key": key_line(client_key_text)},
    )
"""


def test_a_leak_in_a_test_body_fails_that_test(pytester: pytest.Pytester) -> None:
    root = Path(__file__).parents[2]
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(root)!r})\nfrom tests.conftest import *\n"
    )
    pytester.makepyfile(test_leaks=LEAKING_TESTS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:sugar",
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=5, errors=4)
    output = result.stdout.str()
    for test, where in [
        ("test_logs_it", "log (call)"),
        ("test_fires_it", "event"),
        ("test_returns_it_in_a_form", "flow result"),
        ("test_raises_it_in_a_repair", "repair issue"),
    ]:
        report = output.split(f"ERROR at teardown of {test}")[1].split("ERROR at teardown")[0]
        assert f"'{where}'" in report
