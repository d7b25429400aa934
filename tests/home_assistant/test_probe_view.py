"""The view that answers the engine's probe: only a live probe's random path answers."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ssh_callhome.probe_view import async_forget_probe, async_new_probe


async def test_view_answers_only_live_probes(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "ssh_callhome", {})
    spec, token = await async_new_probe(hass, 300)
    client = await hass_client_no_auth()
    live = await client.get(spec.path)
    assert live.status == 200
    assert await live.read() == spec.answer
    assert (await client.get("/api/ssh_callhome/probe/guess")).status == 404
    async_forget_probe(hass, token)
    assert (await client.get(spec.path)).status == 404
