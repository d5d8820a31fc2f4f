"""Tier 3: ``--proxy-protocol`` on the real server: the PROXY protocol header a trusted peer
sends before HTTP names the scope's ``client`` and ``server`` (and, with a v2 PP2_TYPE_SSL
TLV saying the client spoke TLS to the proxy, makes the scheme https or wss); anything else
is closed.

The header's parsing (every v1 and v2 form, each refusal) is tier 1,
tests/proto/test_proxy_protocol.py; these tests check the wiring on a loopback server (the
peer is 127.0.0.1, trusted by the default ``forwarded_allow_ips``) with raw sockets, so the
bytes on the wire are exactly the test's.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
import trustme
import wsproto
import wsproto.events

from trio_asgi._h11.reader import LINGER_TIMEOUT
from trio_asgi._net.proxy_protocol import V2_SIGNATURE

from ..deploy_configs import deploy_config
from ..helpers import H11Client, read_until_eof, start_server

PROXY_LOG = "PROXY protocol: "  # how each debug line about a refused connection begins


async def address_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with its scope's client and server as JSON."""
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "server": scope["server"]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def scheme_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: answers with its scope's client, server and scheme as JSON. WebSocket:
    accepts, sends the scheme as a text message, closes."""
    if scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["scheme"]})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    seen = {"client": scope["client"], "server": scope["server"], "scheme": scope["scheme"]}
    body = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def v2_header(command: int, family_transport: int, addresses: bytes) -> bytes:
    """A PROXY protocol v2 header (spec 2.2): version 2 with ``command``, then the family
    and transport byte, the length, and the address block."""
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family_transport])
        + struct.pack("!H", len(addresses))
        + addresses
    )


def v2_inet6(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v2 PROXY command, INET6 over STREAM (0x21)."""
    block = (
        ipaddress.IPv6Address(source[0]).packed
        + ipaddress.IPv6Address(destination[0]).packed
        + struct.pack("!HH", source[1], destination[1])
    )
    return v2_header(0x1, 0x21, block)


def v2_inet_ssl(client_bits: int | None) -> bytes:
    """A v2 PROXY command, INET over STREAM, from 203.0.113.7:5555 to 10.0.0.1:443, with a
    PP2_TYPE_SSL TLV (spec 2.2.5) whose client field is ``client_bits`` (None: no TLV)."""
    block = (
        ipaddress.IPv4Address("203.0.113.7").packed
        + ipaddress.IPv4Address("10.0.0.1").packed
        + struct.pack("!HH", 5555, 443)
    )
    if client_bits is not None:
        version = b"\x21" + struct.pack("!H", 7) + b"TLSv1.3"  # PP2_SUBTYPE_SSL_VERSION
        value = bytes([client_bits]) + struct.pack("!I", 0) + version
        block += b"\x20" + struct.pack("!H", len(value)) + value
    return v2_header(0x1, 0x11, block)


V1_HEADER = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n"


async def received_before_close(stream: trio.SocketStream) -> bytes:
    """What the server sent before it closed: a refused connection is closed with the
    client's bytes unread, which the kernel may turn into a reset instead of a FIN."""
    data = bytearray()
    try:
        while chunk := await stream.receive_some(65536):
            data += chunk
    except trio.BrokenResourceError:
        pass  # reset: closed, as a FIN would say
    return bytes(data)


def proxy_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "trio_asgi.error" and record.getMessage().startswith(PROXY_LOG)
    ]


async def proxied_request(port: int, *parts: bytes) -> tuple[dict[str, Any], tuple[str, int]]:
    """Send ``parts`` (each its own send, the reader seeing each before the next) then a GET
    on a new connection; the scope's addresses it answered with, and the client's own."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        client = H11Client(stream)
        *first, last = parts
        for part in first:
            await stream.send_all(part)
            await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(last + client.request_bytes())
        response = await client.read_response()
        assert response.status == 200
        own = stream.socket.getsockname()
        return json.loads(response.body), (own[0], own[1])


async def test_v1_header_and_request_in_one_packet_set_the_scope_addresses(
    nursery: trio.Nursery,
) -> None:
    server = await start_server(nursery, address_app, proxy_protocol=True)
    seen, _ = await proxied_request(server.port, V1_HEADER)
    assert seen == {"client": ["203.0.113.7", 5555], "server": ["10.0.0.1", 443]}
    await server.shutdown()


async def test_v2_inet6_header_sets_the_scope_addresses(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, address_app, proxy_protocol=True)
    seen, _ = await proxied_request(server.port, V2_INET6_HEADER)
    assert seen == {"client": ["2001:db8::7", 40000], "server": ["2001:db8::1", 8443]}
    await server.shutdown()


async def test_v2_local_keeps_the_socket_addresses(nursery: trio.Nursery) -> None:
    """A LOCAL command (a health check from the proxy itself) carries no addresses: the
    socket's stand (spec 2.2)."""
    server = await start_server(nursery, address_app, proxy_protocol=True)
    seen, own = await proxied_request(server.port, v2_header(0x0, 0x00, b""))
    assert seen == {"client": list(own), "server": ["127.0.0.1", server.port]}
    await server.shutdown()


V2_INET6_HEADER = v2_inet6(("2001:db8::7", 40000), ("2001:db8::1", 8443))


@pytest.mark.parametrize(
    ("client_bits", "scheme"),
    [
        pytest.param(0x01, "https", id="PP2_CLIENT_SSL"),
        pytest.param(0x07, "https", id="PP2_CLIENT_SSL and certificate bits"),
        pytest.param(0x00, "http", id="PP2_TYPE_SSL without PP2_CLIENT_SSL"),
        pytest.param(None, "http", id="no PP2_TYPE_SSL"),
    ],
)
async def test_v2_ssl_tlv_makes_the_scheme_https(
    nursery: trio.Nursery, client_bits: int | None, scheme: str
) -> None:
    server = await start_server(nursery, scheme_app, proxy_protocol=True)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        client = H11Client(stream)
        await stream.send_all(v2_inet_ssl(client_bits) + client.request_bytes())
        first = await client.read_response()
        second = await client.request()  # keep-alive: the scheme is the connection's
    for response in (first, second):
        assert json.loads(response.body) == {
            "client": ["203.0.113.7", 5555],
            "server": ["10.0.0.1", 443],
            "scheme": scheme,
        }
    await server.shutdown()


@pytest.mark.parametrize(("client_bits", "scheme"), [(0x01, "wss"), (None, "ws")])
async def test_v2_ssl_tlv_makes_a_websocket_scheme_wss(
    nursery: trio.Nursery, client_bits: int | None, scheme: str
) -> None:
    server = await start_server(nursery, scheme_app, proxy_protocol=True)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        request = ws.send(wsproto.events.Request(host="example", target="/"))
        await stream.send_all(v2_inet_ssl(client_bits) + request)
        texts: list[str] = []
        closed = False
        while not closed:
            ws.receive_data(await stream.receive_some(65536) or None)
            for event in ws.events():
                if isinstance(event, wsproto.events.TextMessage):
                    texts.append(event.data)
                closed = closed or isinstance(event, wsproto.events.CloseConnection)
    assert texts == [scheme]
    await server.shutdown()


@pytest.mark.parametrize(
    ("parts", "client"),
    [
        pytest.param((V1_HEADER[:9], V1_HEADER[9:]), ["203.0.113.7", 5555], id="v1"),
        pytest.param((V2_INET6_HEADER[:10], V2_INET6_HEADER[10:]), ["2001:db8::7", 40000], id="v2"),
    ],
)
async def test_header_split_across_two_sends(
    nursery: trio.Nursery, parts: tuple[bytes, bytes], client: list[object]
) -> None:
    server = await start_server(nursery, address_app, proxy_protocol=True)
    seen, _ = await proxied_request(server.port, *parts)
    assert seen["client"] == client
    await server.shutdown()


async def test_keep_alive_requests_keep_the_proxied_client(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, address_app, proxy_protocol=True)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        client = H11Client(stream)
        await stream.send_all(V1_HEADER + client.request_bytes())
        first = await client.read_response()
        second = await client.request()
    for response in (first, second):
        assert response.status == 200
        assert json.loads(response.body)["client"] == ["203.0.113.7", 5555]
    await server.shutdown()


async def test_malformed_header_closes_without_a_response_and_the_next_client_is_served(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    server = await start_server(nursery, address_app, proxy_protocol=True)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 05555 443\r\nGET / HTTP/1.1\r\n")
        assert await received_before_close(stream) == b""
    logs = proxy_logs(caplog)
    assert len(logs) == 1
    assert "invalid header" in logs[0].getMessage()
    assert logs[0].levelno == logging.DEBUG
    assert logs[0].exc_info is None
    seen, _ = await proxied_request(server.port, V1_HEADER)
    assert seen["client"] == ["203.0.113.7", 5555]
    await server.shutdown()


async def test_no_header_within_request_header_timeout_closes(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The header has ``request_header_timeout`` seconds, not the keep-alive timeout."""
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    server = await start_server(
        nursery,
        address_app,
        proxy_protocol=True,
        request_header_timeout=7,
        keep_alive_timeout=30,
    )
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        started = trio.current_time()
        assert await read_until_eof(stream) == b""
    assert trio.current_time() - started == pytest.approx(7)
    assert ["timed out" in record.getMessage() for record in proxy_logs(caplog)] == [True]
    await server.shutdown()


async def test_graceful_shutdown_ends_the_wait_for_a_header(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A connection still waiting for its header is idle: shutdown sends a FIN and waits at
    most LINGER_TIMEOUT for it, not the rest of request_header_timeout."""
    server = await start_server(
        nursery, address_app, proxy_protocol=True, request_header_timeout=30
    )
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        await server.shutdown()
        assert trio.current_time() - started == pytest.approx(LINGER_TIMEOUT)
        assert await read_until_eof(stream) == b""


async def test_untrusted_peer_is_closed(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer not in forwarded_allow_ips is refused, header or not: the server never
    guesses whether a header is there (spec section 1)."""
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    server = await start_server(
        nursery, address_app, proxy_protocol=True, forwarded_allow_ips="10.9.9.9"
    )
    for data in (V1_HEADER + b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(data)
            assert await received_before_close(stream) == b""
    logs = proxy_logs(caplog)
    assert len(logs) == 2
    assert all("not a trusted proxy" in record.getMessage() for record in logs)
    await server.shutdown()


async def test_option_off_a_proxy_line_is_a_bad_request(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, address_app)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(V1_HEADER + b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        raw = await read_until_eof(stream)
    assert raw.startswith(b"HTTP/1.1 400 ")
    await server.shutdown()


HAPROXY = shutil.which("haproxy")
T = TypeVar("T")


def haproxy_config(fd: int, port: int) -> str:
    """docs/deploy/haproxy.cfg, listening on the inherited ``fd`` and sending to ``port``."""
    return deploy_config(
        "haproxy.cfg",
        {
            "bind :80": f"bind fd@{fd}",
            "server app 127.0.0.1:8000 ": f"server app 127.0.0.1:{port} ",
        },
    )


async def through_haproxy(
    tmp_path: Path, config_for: Callable[[int], str], request: Callable[[int], Awaitable[T]]
) -> tuple[T, int]:
    """Run HAProxy with ``config_for(fd)`` listening on a socket this test bound (``fd@N``:
    a connection queues until HAProxy accepts it, so no polling), await ``request(port)``
    against it, stop HAProxy; returns what ``request`` returned and HAProxy's port."""
    assert HAPROXY is not None
    with socket.socket() as front:
        front.bind(("127.0.0.1", 0))
        front.listen(16)
        front_port = front.getsockname()[1]
        config = tmp_path / "haproxy.cfg"
        config.write_text(config_for(front.fileno()))
        async with trio.open_nursery() as haproxy:
            haproxy.start_soon(
                partial(
                    trio.run_process,
                    [HAPROXY, "-db", "-f", str(config)],
                    pass_fds=(front.fileno(),),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
            )
            result = await request(front_port)
            haproxy.cancel_scope.cancel()  # run_process kills haproxy
    return result, front_port


async def https_request(port: int, context: ssl.SSLContext) -> tuple[Any, tuple[str, int]]:
    """One request over TLS to ``port``: the response and the client's own address."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    own = tcp.socket.getsockname()
    stream = trio.SSLStream(tcp, context, server_hostname="localhost")
    try:
        response = await H11Client(stream).request()
    finally:
        await trio.aclose_forcefully(stream)
    return response, (own[0], own[1])


@pytest.mark.skipif(HAPROXY is None, reason="needs haproxy on PATH (the haproxy package)")
async def test_behind_haproxy_send_proxy_v2(nursery: trio.Nursery, tmp_path: Path) -> None:
    """HAProxy in TCP mode with ``send-proxy-v2`` (docs/deploy/haproxy.cfg): the scope names
    the client HAProxy saw and the address it was reached on, not HAProxy's own connection.
    HAProxy listens on a socket the test bound (``fd@N``), so a connection queues until it
    accepts: no polling."""
    server = await start_server(nursery, address_app, proxy_protocol=True)
    (seen, own), front_port = await through_haproxy(
        tmp_path,
        lambda fd: haproxy_config(fd, server.port),
        lambda port: proxied_request(port, b""),
    )
    assert seen == {"client": list(own), "server": ["127.0.0.1", front_port]}
    await server.shutdown()


HAPROXY_TLS_CONFIG = """\
global
    maxconn 16
defaults
    mode tcp
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend front
    bind fd@{fd} ssl crt {pem}
    default_backend app
backend app
    server app 127.0.0.1:{port} send-proxy-v2-ssl
"""


@pytest.mark.skipif(HAPROXY is None, reason="needs haproxy on PATH (the haproxy package)")
async def test_behind_haproxy_terminating_tls_send_proxy_v2_ssl(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """HAProxy terminates TLS (``bind ... ssl crt``, a trustme certificate and key in one
    PEM) and sends ``send-proxy-v2-ssl``: its PP2_TYPE_SSL TLV says the client spoke TLS,
    so the plain-TCP app sees scheme ``https``, and the client HAProxy saw."""
    ca = trustme.CA()
    pem = tmp_path / "haproxy.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = await start_server(nursery, scheme_app, proxy_protocol=True)
    (response, own), front_port = await through_haproxy(
        tmp_path,
        lambda fd: HAPROXY_TLS_CONFIG.format(fd=fd, pem=pem, port=server.port),
        lambda port: https_request(port, client_context),
    )
    assert response.status == 200
    assert json.loads(response.body) == {
        "client": [own[0], own[1]],
        "server": ["127.0.0.1", front_port],
        "scheme": "https",
    }
    await server.shutdown()


@pytest.mark.skipif(HAPROXY is None, reason="needs haproxy on PATH (the haproxy package)")
async def test_behind_haproxy_passing_tls_through_to_the_server(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """docs/deploy/haproxy.cfg (TCP mode, ``send-proxy-v2``) in front of a server that ends
    TLS itself (``--proxy-protocol --ssl-certfile``): the PROXY header comes in the clear,
    then the client's own TLS bytes, which the server reads after the header; the scope
    says ``https`` and names the client HAProxy saw."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = await start_server(
        nursery,
        scheme_app,
        proxy_protocol=True,
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
    )
    (response, own), front_port = await through_haproxy(
        tmp_path,
        lambda fd: haproxy_config(fd, server.port),
        lambda port: https_request(port, client_context),
    )
    assert response.status == 200
    assert json.loads(response.body) == {
        "client": [own[0], own[1]],
        "server": ["127.0.0.1", front_port],
        "scheme": "https",
    }
    await server.shutdown()
