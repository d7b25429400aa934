"""The engine with its connection replaced by a script: the test says what happens when.

Where a test is about what Home Assistant does with the engine's state (how often entities
write it, say), a real server would make the sequence of states a matter of timing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from custom_components.ssh_callhome.engine.state import Status
from custom_components.ssh_callhome.engine.tunnel import Tunnel


class ScriptedTunnel(Tunnel):
    """A `Tunnel` that connects nowhere: `change` moves its state, as the real engine would."""

    async def run(self) -> None:
        """Run until the entry unloads, as the engine does, without connecting."""
        self.change(running=True)
        try:
            await asyncio.Event().wait()
        finally:
            self.change(running=False, status=Status.DISCONNECTED)

    def change(self, **fields: Any) -> None:
        """Replace some fields of the state and tell the listeners, as the engine does."""
        self._update(replace(self.state, **fields))
