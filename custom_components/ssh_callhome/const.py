"""Constants shared by the Home Assistant side of ssh_callhome."""

from typing import Final

DOMAIN: Final = "ssh_callhome"

CONF_PRIVATE_KEY: Final = "private_key"
CONF_PASSPHRASE: Final = "passphrase"  # noqa: S105 - a field name
CONF_REMOTE_PORT: Final = "remote_port"
CONF_HOST_KEY: Final = "host_key"

DEFAULT_SSH_PORT: Final = 22
DEFAULT_REMOTE_PORT: Final = 8123

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
SERVICE_RECONNECT: Final = "reconnect"
SERVICE_RESTART: Final = "restart"
