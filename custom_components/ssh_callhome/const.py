"""Constants shared by the Home Assistant side of ssh_callhome."""

from typing import Final

from .engine import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_VISITOR

DOMAIN: Final = "ssh_callhome"
# The config entry's layout. Minor 2: every option is stored, with its default, at creation;
# a release that adds an option bumps the minor version, and migration stores its default.
# Minor 3: networks allowed and refused, exposure, public URL, self-healing, heartbeat.
# Minor 4: TCP mode to Home Assistant's own web server is stored as delivery to Home Assistant.
ENTRY_VERSION: Final = 1
ENTRY_MINOR_VERSION: Final = 4

CONF_PRIVATE_KEY: Final = "private_key"
CONF_PASSPHRASE: Final = "passphrase"  # noqa: S105 - a field name
CONF_REMOTE_PORT: Final = "remote_port"
CONF_HOST_KEY: Final = "host_key"
# Which server software the flow met (server_hello.ServerSoftware); absent in older entries.
CONF_SERVER_SOFTWARE: Final = "server_software"

# What the discovered flow of the SSH Call Home add-on is started with: the add-on's slug.
ADDON_SLUG: Final = "addon_slug"

DEFAULT_SSH_PORT: Final = 22
DEFAULT_REMOTE_PORT: Final = 8123

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
SERVICE_RECONNECT: Final = "reconnect"
SERVICE_RESTART: Final = "restart"

# Options and their defaults (keepalive 30 s, 3 times, like the add-on); bounds: options_flow.
CONF_KEEPALIVE_INTERVAL: Final = "keepalive_interval"
CONF_KEEPALIVE_COUNT: Final = "keepalive_count"
CONF_BIND: Final = "bind"
CONF_BACKOFF_MAX: Final = "backoff_max"
CONF_PROBE_INTERVAL: Final = "probe_interval"
CONF_MODE: Final = "mode"
CONF_TARGET_HOST: Final = "target_host"
CONF_TARGET_PORT: Final = "target_port"
CONF_EXTRA_FORWARDS: Final = "extra_forwards"
CONF_MAX_CONNECTIONS: Final = "max_connections"
CONF_MAX_CONNECTIONS_PER_VISITOR: Final = "max_connections_per_visitor"
# Who may come through the tunnel: one address or CIDR network a line (visitors.py).
CONF_ALLOWED_NETWORKS: Final = "allowed_networks"
CONF_REFUSED_NETWORKS: Final = "refused_networks"
# The URL visitors use (scheme://host[:port]), checked from outside; empty: not set.
CONF_PUBLIC_URL: Final = "public_url"
# Self-healing and the heartbeat: failed checks in a row that reconnect (0: never); a URL
# requested every so many minutes while the tunnel is up and its check passes ("": none).
CONF_SELF_HEAL_AFTER: Final = "self_heal_after"
CONF_HEARTBEAT_URL: Final = "heartbeat_url"
CONF_HEARTBEAT_INTERVAL: Final = "heartbeat_interval"
# In process: all of Home Assistant's HTTP server, or only its webhooks (webhooks_only.py).
CONF_EXPOSE: Final = "expose"
EXPOSE_HOME_ASSISTANT: Final = "home_assistant"
EXPOSE_WEBHOOKS: Final = "webhooks"

# Home Assistant's own HTTP server, in process, with the visitor's address; or any TCP target.
MODE_HOME_ASSISTANT: Final = "home_assistant"
MODE_TCP: Final = "tcp"

BIND_ALL: Final = "all"
BIND_LOOPBACK: Final = "loopback"
# What each bind choice asks the server to listen on.
BIND_ADDRESSES: Final = {BIND_ALL: "", BIND_LOOPBACK: "127.0.0.1"}

DEFAULT_OPTIONS: Final = {
    CONF_KEEPALIVE_INTERVAL: 30,
    CONF_KEEPALIVE_COUNT: 3,
    CONF_BIND: BIND_ALL,
    CONF_BACKOFF_MAX: 300,
    CONF_PROBE_INTERVAL: 300,
    CONF_MODE: MODE_HOME_ASSISTANT,
    # TCP mode's target, which must be another service than Home Assistant's own web server;
    # empty (port 0) outside TCP mode.
    CONF_TARGET_HOST: "",
    CONF_TARGET_PORT: 0,
    # One `remote_port:host:port` a line.
    CONF_EXTRA_FORWARDS: "",
    CONF_MAX_CONNECTIONS: DEFAULT_MAX_CONNECTIONS,
    CONF_MAX_CONNECTIONS_PER_VISITOR: DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
    # Empty: everybody may come in.
    CONF_ALLOWED_NETWORKS: "",
    CONF_REFUSED_NETWORKS: "",
    CONF_PUBLIC_URL: "",
    CONF_SELF_HEAL_AFTER: 3,
    CONF_HEARTBEAT_URL: "",
    CONF_HEARTBEAT_INTERVAL: 5,
    CONF_EXPOSE: EXPOSE_HOME_ASSISTANT,
}

EVENT_STATE_CHANGED: Final = "ssh_callhome_state_changed"
EVENT_VISITOR_REFUSED: Final = "ssh_callhome_visitor_refused"
EVENT_SELF_HEALED: Final = "ssh_callhome_self_healed"
# A forward refused, or a key rejected, this long becomes a repair issue.
PERSISTENT_FAILURE_SECONDS: Final = 300
