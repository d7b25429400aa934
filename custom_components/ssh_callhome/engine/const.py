"""The engine's constants that the layer above shares."""

from typing import Final

# What a TCP port number may be, wherever the user gives one.
VALID_PORTS: Final = range(1, 65536)
