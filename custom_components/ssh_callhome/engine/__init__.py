"""The engine: the tunnel in plain asyncio and asyncssh; it imports no Home Assistant.

Nothing here imports `homeassistant` or anything outside this package
(tests/test_engine_boundary.py checks it). The Home Assistant layer above imports the engine
from here only: `__all__` is that API. It starts a `Tunnel` with `TunnelSettings` and a
`SessionTarget`, and follows the tunnel's `TunnelState` through listeners.

The map of the package:

The tunnel
    tunnel.py           `Tunnel`: connect, take the forward, keep alive, reconnect with backoff,
                        measure; its `TunnelState` goes to listeners
    settings.py         the engine's input: `TunnelSettings`
    session_target.py   the `SessionTarget` each forwarded connection is handed to
    state.py            `TunnelState`, statuses, and which failure is which reason
    backoff.py          exponential backoff with jitter
    healing.py          self-healing: when a failing check makes the tunnel reconnect, and when
                        the 15-minute gap holds it back
    const.py            the constants the layer above shares (valid port numbers)

Connecting
    connection.py       opening the SSH connection (pinned host key, the client key only), the
                        forward request, the flow's one-off check, fetching a host key, round
                        trip and key exchange
    client_options.py   the asyncssh options of every connection: nothing read from ~/.ssh
    ciphers.py          which cipher is offered first, for the CPU Home Assistant runs on
    keys.py             reading, generating and exporting keys; the restricted authorized_keys
                        line
    server_hello.py     a server's version banner and the host-key algorithms it offers
    server_text.py      text the server chooses, made safe to log and show
    server_setup.py     the server settings shown beside the authorized_keys line
    server_script.py    the script that installs the line and the settings on the server
    listening.py        remote forwards without the start-up race
    ignore_packets.py   no empty SSH_MSG_IGNORE before every packet

Forwarding and the gate
    channels.py         what the carriers and the gate share: the session and protocol factory
                        types and the traffic counters
    forwarding.py       a forwarded channel carried over TCP to its target
    bridge.py           a forwarded channel handed in process to an asyncio protocol (Home
                        Assistant's HTTP server), with TLS when it serves HTTPS
    proxy_header.py     the PROXY protocol v2 header an extra forward with `proxy-v2` sends first
    chunked_body.py     a chunked request body followed to its exact end, its framing and
                        trailer bounded (for the request-head bound in aiohttp_internals.py)
    limits.py           the gate every channel passes: who may come in, caps on tunnelled
                        connections, overall and per visitor, and how long a new connection may
                        stay silent or a TCP target stall
    visitors.py         networks allowed and refused, the originator address as a list sees it,
                        recent originators and refused visitors (announced once a minute per
                        address)
    extras.py           extra forwards: their syntax and taking them on the connection

Checks from outside
    probe.py            the public-path probe, run from the server's side
    public_url.py       the public URL: its syntax, and the outside-in request for the probe's
                        path through the HTTP session it is handed

Private API, each reach checked before use, each with a fallback
    private_api.py      the checks, and the one warning per process when one fails
    asyncssh_internals.py  every use of asyncssh's private API
    aiohttp_internals.py   every use of aiohttp's server-side private API: file responses
                        sized for the tunnel, and each request's head bounded
    aiohttp_client_internals.py  the one reach into aiohttp's client: a response (headers,
                        body, trailers) read up to a bound
    asyncio_internals.py   the one reach into asyncio's TLS protocol: TLS in front of a
                        channel, whose transport has aiohttp copy files itself
"""

from __future__ import annotations

from .aiohttp_client_internals import ResponseHeadersTooLarge, bounded_session_arguments
from .aiohttp_internals import with_tunnel_file_responses
from .backoff import BackoffPolicy
from .bridge import in_process_target
from .channels import ProtocolFactory, TrafficStats
from .connection import check_tunnel, fetch_host_key
from .const import VALID_PORTS
from .extras import ExtraForward, InvalidExtraForward, parse_extra_forwards
from .forwarding import tcp_target
from .healing import SelfHealPolicy
from .keys import (
    InvalidKey,
    KeyProblem,
    WeakKey,
    WrongPassphrase,
    authorized_keys_line,
    export_host_key,
    fingerprint,
    generate_private_key,
    load_host_key,
    load_private_key,
)
from .limits import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_VISITOR, ConnectionLimits
from .probe import ProbeResult, ProbeSpec, served_certificate
from .public_url import (
    InvalidPublicUrl,
    PublicUrlCheck,
    PublicUrlResult,
    parse_public_url,
    system_tls_context,
)
from .server_hello import ServerSoftware
from .server_script import setup_script
from .server_setup import server_settings
from .server_text import printable
from .session_target import SessionTarget
from .settings import TunnelSettings
from .state import PUBLIC_URL_FAILURE_PREFIX, Reason, Status, TunnelState, describe, reason_for
from .tunnel import Tunnel
from .visitors import (
    InvalidNetwork,
    RefusalNotice,
    VisitorPolicy,
    VisitorRefusal,
    originator_address,
    parse_networks,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_VISITOR",
    "PUBLIC_URL_FAILURE_PREFIX",
    "VALID_PORTS",
    "BackoffPolicy",
    "ConnectionLimits",
    "ExtraForward",
    "InvalidExtraForward",
    "InvalidKey",
    "InvalidNetwork",
    "InvalidPublicUrl",
    "KeyProblem",
    "ProbeResult",
    "ProbeSpec",
    "ProtocolFactory",
    "PublicUrlCheck",
    "PublicUrlResult",
    "Reason",
    "RefusalNotice",
    "ResponseHeadersTooLarge",
    "SelfHealPolicy",
    "ServerSoftware",
    "SessionTarget",
    "Status",
    "TrafficStats",
    "Tunnel",
    "TunnelSettings",
    "TunnelState",
    "VisitorPolicy",
    "VisitorRefusal",
    "WeakKey",
    "WrongPassphrase",
    "authorized_keys_line",
    "bounded_session_arguments",
    "check_tunnel",
    "describe",
    "export_host_key",
    "fetch_host_key",
    "fingerprint",
    "generate_private_key",
    "in_process_target",
    "load_host_key",
    "load_private_key",
    "originator_address",
    "parse_extra_forwards",
    "parse_networks",
    "parse_public_url",
    "printable",
    "reason_for",
    "served_certificate",
    "server_settings",
    "setup_script",
    "system_tls_context",
    "tcp_target",
    "with_tunnel_file_responses",
]
