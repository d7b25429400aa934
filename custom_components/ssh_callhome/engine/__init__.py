"""The engine: plain asyncio and asyncssh, no Home Assistant."""
