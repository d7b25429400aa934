"""What the server chooses to say reaches Home Assistant's log on one line: no forged lines.

The engine's own log lines and the escaping itself: tests/engine/test_server_text.py.
"""

from __future__ import annotations

import pytest

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ssh_callhome.const import CONF_PRIVATE_KEY, CONF_REMOTE_PORT, DOMAIN
from harness.fault_server import FaultServer
from harness.network import LOOPBACK, free_port
from harness.rude_server import assert_no_forged_line


async def test_no_log_line_of_home_assistant_carries_the_forgery(
    hass: HomeAssistant,
    ha_http_port: int,
    rude_server: FaultServer,
    client_key_text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the config flow, asyncssh's own lines (which quote the reason) included."""
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "paste_key"}
    )
    user_input = {
        CONF_HOST: LOOPBACK,
        CONF_PORT: rude_server.port,
        CONF_USERNAME: "tunnel",
        CONF_REMOTE_PORT: free_port(),
        CONF_PRIVATE_KEY: client_key_text,
    }
    confirm = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert confirm["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(confirm["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    quoting = [record for record in caplog.records if "forged" in record.getMessage()]
    assert any(record.name.startswith("asyncssh") for record in quoting)
    assert_no_forged_line(caplog.records)
