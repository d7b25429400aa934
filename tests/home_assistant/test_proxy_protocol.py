"""PROXY protocol v2 on extra forwards: the header byte for byte against the spec's layout
(haproxy's doc/proxy-protocol.txt, 2.2), and a real nginx behind a real OpenSSH server that
logs the visitor's address from it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_socket  # type: ignore[import-untyped]

from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ssh_callhome.engine.proxy_header import proxy_v2_header
from harness.integration import load, state_of
from harness.network import LOOPBACK, free_port, wait_for_port, wait_until
from harness.nginx import Nginx
from harness.openssh import OpenSSHServer

# The 12 bytes every v2 header starts with.
SIGNATURE = bytes.fromhex("0d0a0d0a000d0a515549540a")
# Version 2 (high nibble) with the LOCAL (0) or PROXY (1) command.
LOCAL, PROXY = "20", "21"
# Address family and transport: TCP over IPv4, TCP over IPv6, unspecified.
TCP4, TCP6, UNSPEC = "11", "21", "00"
# A visitor address that no SSH server reports unless the visitor really connects from it.
VISITOR = "127.0.0.7"
# The documented nginx lines for a forward with proxy-v2: the listen line's option, and the rest.
README_NGINX = re.findall(
    r"```\nlisten 127\.0\.0\.1:\d+( proxy_protocol);\n(set_real_ip_from [^`]*)```",
    (Path(__file__).parents[2] / "docs" / "visitor-address.md").read_text(),
)


def layout(command: str, family: str, length: str, *addresses: str) -> bytes:
    """The spec's struct, written out: signature, ver_cmd, fam, len, then the address block."""
    return SIGNATURE + bytes.fromhex(command + family + length + "".join(addresses))


def proxied(family: str, *addresses: str) -> bytes:
    """A PROXY header of TCP over IPv4 (12 address bytes) or IPv6 (36)."""
    return layout(PROXY, family, "000c" if family == TCP4 else "0024", *addresses)


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        pytest.param(
            ("203.0.113.9", 51234),
            ("192.0.2.1", 8883),
            # src 203.0.113.9, dst 192.0.2.1, src port 51234, dst port 8883
            proxied(TCP4, "cb007109", "c0000201", "c822", "22b3"),
            id="ipv4",
        ),
        pytest.param(
            ("2001:db8::1", 443),
            ("2001:db8::2", 8443),
            proxied(TCP6, "20010db8" + "0" * 23 + "1", "20010db8" + "0" * 23 + "2", "01bb", "20fb"),
            id="ipv6",
        ),
        pytest.param(
            ("2001:db8::1", 1),
            ("127.0.0.1", 2),
            # IPv4 with IPv6: both as IPv6, the IPv4 one mapped (::ffff:127.0.0.1)
            proxied(TCP6, "20010db8" + "0" * 23 + "1", "0" * 20 + "ffff7f000001", "0001", "0002"),
            id="ipv4 listen address with an ipv6 visitor",
        ),
        pytest.param(
            ("198.51.100.7", 65535),
            ("", 2222),
            # The server listens on all its addresses: the unspecified one.
            proxied(TCP4, "c6336407", "00000000", "ffff", "08ae"),
            id="all addresses, ipv4",
        ),
        pytest.param(
            ("::1", 0),
            ("localhost", 2222),
            proxied(TCP6, "0" * 31 + "1", "0" * 32, "0000", "08ae"),
            id="a listen name, ipv6",
        ),
        pytest.param(
            ("fe80::1%eth0", 1),
            ("fe80::2", 2),
            # The zone is local to the server: it has no place in the header.
            proxied(TCP6, "fe80" + "0" * 27 + "1", "fe80" + "0" * 27 + "2", "0001", "0002"),
            id="ipv6 with a zone",
        ),
    ],
)
def test_header_for_an_ip_visitor(
    source: tuple[str, int], destination: tuple[str, int], expected: bytes
) -> None:
    assert proxy_v2_header(source, destination) == expected


@pytest.mark.parametrize(
    ("source", "destination"),
    [
        (("", 0), ("127.0.0.1", 2222)),
        (("some-host", 1), ("127.0.0.1", 2222)),
        (("127.0.0.1", 70000), ("127.0.0.1", 2222)),
        (("127.0.0.1", -1), ("127.0.0.1", 2222)),
        (("127.0.0.1", 1), ("127.0.0.1", 65536)),
    ],
)
def test_a_visitor_without_an_ip_address_gets_the_local_command(
    source: tuple[str, int], destination: tuple[str, int]
) -> None:
    """LOCAL with no address (length 0): the receiver uses the connection's own addresses."""
    assert proxy_v2_header(source, destination) == layout(LOCAL, UNSPEC, "0000")


async def nginx_on(directory: Path, listen_options: str, directives: str) -> Nginx:
    """nginx answering every request with 200, started and accepting."""
    server = Nginx(
        directory,
        'return 200 "served\\n";',
        listen_options=listen_options,
        server_directives=directives,
    )
    server.start()
    await wait_for_port(server.port, accepting=True, timeout=10)
    return server


@pytest.fixture
async def proxy_nginx(socket_enabled: None, tmp_path: Path) -> AsyncIterator[Nginx]:
    """nginx that expects a PROXY protocol header on every connection, as the documentation says."""
    assert len(README_NGINX) == 1, "the documentation has one nginx proxy_protocol snippet"
    [(listen_options, directives)] = README_NGINX
    server = await nginx_on(tmp_path / "proxy_nginx", listen_options, directives)
    yield server
    server.stop()


@pytest.fixture
async def plain_nginx(socket_enabled: None, tmp_path: Path) -> AsyncIterator[Nginx]:
    server = await nginx_on(tmp_path / "plain_nginx", "", "")
    yield server
    server.stop()


@pytest.fixture
def ipv6_loopback(socket_enabled: None) -> Iterator[None]:
    """Connections to ::1 too; the next test's setup narrows it to 127.0.0.1 again."""
    pytest_socket.socket_allow_hosts([LOOPBACK, "::1"])
    yield
    pytest_socket.socket_allow_hosts([LOOPBACK])


async def get_from(source: str, host: str, port: int) -> tuple[int, bytes]:
    """An HTTP/1.0 GET to host:port from `source`; returns the visitor's port and the reply."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    visitor_port = int(writer.get_extra_info("sockname")[1])
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: home\r\n\r\n")
        return visitor_port, await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def start_with_forwards(hass: HomeAssistant, entry: MockConfigEntry, forwards: str) -> None:
    """Load the entry with these extra forwards; wait until the server granted each."""
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "extra_forwards": forwards}
    )
    await load(hass, entry)
    sensors = [
        f"binary_sensor.root_127_0_0_1_forward_{line.split(':')[0]}"
        for line in forwards.split("\n")
    ]

    def all_up() -> bool:
        return all(state_of(hass, sensor) == STATE_ON for sensor in sensors)

    await wait_until(all_up, 10, "every extra forward up")


async def test_nginx_sees_the_visitor_through_a_proxy_v2_forward(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    openssh: OpenSSHServer,
    proxy_nginx: Nginx,
    plain_nginx: Nginx,
    ipv6_loopback: None,
) -> None:
    assert openssh.gateway_ports == "no"  # without the header, nginx would see 127.0.0.1
    told, plain, untold = free_port(), free_port(), free_port()
    await start_with_forwards(
        hass,
        entry,
        f"{told}:{LOOPBACK}:{proxy_nginx.port} proxy-v2\n"
        f"{plain}:{LOOPBACK}:{plain_nginx.port}\n"
        f"{untold}:{LOOPBACK}:{proxy_nginx.port}",
    )

    visitor_port, reply = await get_from(VISITOR, LOOPBACK, told)
    assert reply.startswith(b"HTTP/1.1 200 "), proxy_nginx.log
    await wait_until(lambda: len(proxy_nginx.requests) == 1, 5, "logged")
    # The entry listens on all addresses (""): the header's destination is the unspecified one.
    assert proxy_nginx.requests == [
        {
            "proxy_addr": VISITOR,
            "proxy_port": str(visitor_port),
            "proxy_server_addr": "0.0.0.0",
            "proxy_server_port": str(told),
            "peer": LOOPBACK,
            "client": VISITOR,  # the documented realip lines
            "status": "200",
        }
    ]
    # With GatewayPorts no, sshd listens on ::1 too: an IPv6 visitor arrives as one.
    _port, reply = await get_from("::1", "::1", told)
    assert reply.startswith(b"HTTP/1.1 200 ")
    await wait_until(lambda: len(proxy_nginx.requests) == 2, 5, "logged")
    assert proxy_nginx.requests[1]["proxy_addr"] == "::1"
    assert proxy_nginx.requests[1]["proxy_server_addr"] == "::"
    assert proxy_nginx.requests[1]["client"] == "::1"

    # Without the option nothing changes: a plain listener serves it, from Home Assistant.
    _port, reply = await get_from(VISITOR, LOOPBACK, plain)
    assert reply.startswith(b"HTTP/1.1 200 ")
    await wait_until(lambda: len(plain_nginx.requests) == 1, 5, "logged")
    assert plain_nginx.requests[0]["proxy_addr"] == "-"
    assert plain_nginx.requests[0]["client"] == LOOPBACK

    # And a listener that expects the header refuses a forward that does not send it.
    _port, reply = await get_from(VISITOR, LOOPBACK, untold)
    assert reply == b""
    await wait_until(lambda: "broken header" in proxy_nginx.log, 5, "nginx refused it")
    assert len(proxy_nginx.requests) == 2


async def test_the_header_comes_before_every_byte_of_the_visitor(
    hass: HomeAssistant, entry: MockConfigEntry, openssh: OpenSSHServer
) -> None:
    """What the target receives, exactly: the header, then what the visitor sent at once."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.read())
        writer.close()

    target = await asyncio.start_server(record, LOOPBACK, 0)
    told = free_port()
    try:
        await start_with_forwards(
            hass, entry, f"{told}:{LOOPBACK}:{target.sockets[0].getsockname()[1]} proxy-v2"
        )
        _reader, writer = await asyncio.open_connection(LOOPBACK, told, local_addr=(VISITOR, 0))
        visitor_port = writer.get_extra_info("sockname")[1]
        writer.write(b"first bytes")
        writer.write_eof()
        got = await asyncio.wait_for(received, 10)
        writer.close()
    finally:
        target.close()
    # 127.0.0.7 to 0.0.0.0 (the entry listens on all interfaces), then the two ports.
    addresses = ("7f000007", "00000000", f"{visitor_port:04x}", f"{told:04x}")
    assert got == proxied(TCP4, *addresses) + b"first bytes"
