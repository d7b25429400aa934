"""The outside-in check: the URL visitors use, requested over the internet like a visitor would.

The direct probe (probe.py) proves that the server's port reaches Home Assistant. This check
proves the whole path a visitor takes: the name's DNS record, the server's firewall, any
reverse proxy and its certificate, then the tunnel, by asking the public URL for the probe's
random path and expecting the probe's random answer. No Home Assistant imports: the HTTP
session it goes out through is handed in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import yarl

from .aiohttp_client_internals import ResponseHeadersTooLarge
from .probe import ProbeSpec

# An answer longer than this is not ours (the probe's answer is a few dozen bytes).
_MAX_BODY = 16 * 1024
# One label of a host name: letters, digits and inner hyphens (IDNA already applied).
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# What a proxy in front of the tunnel answers when it cannot reach Home Assistant.
_GATEWAY_ERRORS = frozenset({502, 503, 504})


class PublicUrlResult(StrEnum):
    """What the last request to the public URL found."""

    REACHABLE = "reachable"
    NAME_NOT_FOUND = "name_not_found"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS_ERROR = "tls_error"
    # A proxy answered, but could not reach Home Assistant behind it (HTTP 502, 503, 504).
    GATEWAY_ERROR = "gateway_error"
    WRONG_ANSWER = "wrong_answer"  # something answered that is not this Home Assistant
    CONNECTION_FAILED = "connection_failed"  # any other network failure (reset, unreachable)


class InvalidPublicUrl(ValueError):
    """The text is not an http(s) URL of a host with an optional port and nothing more."""


@dataclass(frozen=True, slots=True)
class PublicUrlCheck:
    """Where visitors reach Home Assistant, and what the request goes out with."""

    url: str
    # The HTTP session the request goes out through (on Home Assistant's shared connection pool,
    # with the response headers it reads bounded: aiohttp_client_internals.py).
    session: Callable[[], aiohttp.ClientSession]
    # What HTTPS is verified against: the system's CAs (system_tls_context) unless injected.
    tls: ssl.SSLContext


def parse_public_url(text: str) -> str:
    """The URL as `scheme://host[:port]`, or InvalidPublicUrl.

    A path, query, fragment or credentials would not be where the check's path goes, or would
    be sent to the server with every check: refused rather than dropped silently.
    """
    try:
        url = yarl.URL(text.strip())
    except ValueError:  # a port out of range, brackets that do not close
        raise InvalidPublicUrl(text) from None
    if (
        url.scheme not in ("http", "https")
        or not url.raw_host  # the name as DNS sees it (IDNA)
        or not _valid_host(url.raw_host)
        or url.explicit_port == 0
        or url.user is not None
        or url.password is not None
        or url.path not in ("", "/")
        or url.query_string
        or url.fragment
    ):
        raise InvalidPublicUrl(text)
    return str(url.origin())


def _valid_host(host: str) -> bool:
    """An IP address, or a name made of DNS labels."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return all(_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))
    return True


def system_tls_context() -> ssl.SSLContext:
    """The system's CAs, as any HTTPS client on this machine uses them (reads files: executor)."""
    return ssl.create_default_context()


async def check_public_url(check: PublicUrlCheck, probe: ProbeSpec) -> PublicUrlResult:
    """One request for the probe's path at the public URL; every failure is a result."""
    try:
        async with asyncio.timeout(probe.timeout):
            return await _request(check, probe)
    # TLS errors and timeouts (aiohttp's own too) are OSErrors as well.
    except (aiohttp.ClientError, OSError) as error:
        return _failure(error)


# Failures that say what they are, before the ones that say it through the error underneath.
_NAMED_FAILURES: tuple[tuple[type[Exception], PublicUrlResult], ...] = (
    (aiohttp.ClientConnectorDNSError, PublicUrlResult.NAME_NOT_FOUND),
    (aiohttp.ClientSSLError, PublicUrlResult.TLS_ERROR),
    (ssl.SSLError, PublicUrlResult.TLS_ERROR),
    # Headers beyond the bound: no web server of ours says that much.
    (ResponseHeadersTooLarge, PublicUrlResult.WRONG_ANSWER),
)


def _failure(error: Exception) -> PublicUrlResult:
    for kind, result in _NAMED_FAILURES:
        if isinstance(error, kind):
            return result
    if isinstance(error, aiohttp.ClientConnectorError):
        return _connect_failure(error.os_error)
    if isinstance(error, TimeoutError):
        return PublicUrlResult.TIMEOUT
    return PublicUrlResult.CONNECTION_FAILED


async def _request(check: PublicUrlCheck, probe: ProbeSpec) -> PublicUrlResult:
    # "Connection: close": no connection is kept for the next check, which resolves the name and
    # connects anew. A redirect would lead elsewhere than the URL visitors were given.
    async with check.session().get(
        f"{check.url}{probe.path}",
        ssl=check.tls,
        allow_redirects=False,
        headers={"Connection": "close"},
    ) as response:
        if response.status in _GATEWAY_ERRORS:
            return PublicUrlResult.GATEWAY_ERROR
        if response.status != 200:
            return PublicUrlResult.WRONG_ANSWER
        body = await _read_body(response.content)
    return PublicUrlResult.REACHABLE if body == probe.answer else PublicUrlResult.WRONG_ANSWER


async def _read_body(content: aiohttp.StreamReader) -> bytes:
    """The body, but never more than a little over _MAX_BODY bytes of it."""
    body = b""
    while len(body) <= _MAX_BODY and (chunk := await content.read(_MAX_BODY + 1 - len(body))):
        body += chunk
    return body


def _connect_failure(error: OSError) -> PublicUrlResult:
    if isinstance(error, ConnectionRefusedError):
        return PublicUrlResult.REFUSED
    if isinstance(error, TimeoutError):
        return PublicUrlResult.TIMEOUT
    return PublicUrlResult.CONNECTION_FAILED
