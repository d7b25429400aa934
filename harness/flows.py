"""The integration's forms, driven as the frontend does."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant

# A valid answer to every field of the options form.
VALID_OPTIONS = {
    "keepalive_interval": 15,
    "keepalive_count": 2,
    "bind": "loopback",
    "backoff_max": 60,
    "probe_interval": 120,
    "mode": "home_assistant",
    "max_connections": 50,
    "max_connections_per_visitor": 10,
    "self_heal_after": 5,
    "heartbeat_interval": 10,
    "expose": "home_assistant",
}


async def submit(
    hass: HomeAssistant, flow: ConfigFlowResult, data: dict[str, Any]
) -> ConfigFlowResult:
    """Answer a config flow's current step."""
    return await hass.config_entries.flow.async_configure(flow["flow_id"], data)


def suggested_values(form: ConfigFlowResult) -> dict[str, Any]:
    """What the frontend fills the form with, and submits if the user changes nothing."""
    schema = form["data_schema"]
    assert schema is not None
    return {
        str(key): key.description["suggested_value"]
        for key in schema.schema
        if "suggested_value" in (key.description or {})
    }


async def shown_authorize_step(
    hass: HomeAssistant, confirm: ConfigFlowResult
) -> tuple[ConfigFlowResult, dict[str, str]]:
    """The authorize step that follows the host key's `confirm`, and what it shows: the key's
    line and the script."""
    authorize = await submit(hass, confirm, {})
    assert authorize["step_id"] == "authorize"
    placeholders = authorize["description_placeholders"]
    assert placeholders is not None
    return authorize, dict(placeholders)
