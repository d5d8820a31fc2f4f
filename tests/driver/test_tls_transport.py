"""Tier 2: ``TLSTransport`` (trio_asgi/_net/tls_transport.py) over a connected socket pair,
a client ``trio.SSLStream`` on the other end: the handshake's outcomes, a cleartext PROXY
prefix read exactly (the ClientHello left for OpenSSL), reading and writing through
OpenSSL with backpressure, the close_notify on close (never waited for), no TLS on close
before a handshake, and a write cancelled part-way breaking the transport."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme

from trio_asgi import ClientDisconnected
from trio_asgi._net.proxy_protocol import ProxyProtocolReader
from trio_asgi._net.tls import ServerTLS, TLSSettings, load_server_tls
from trio_asgi._net.tls_transport import TLSTransport


@pytest.fixture
def http_parser() -> str:
    """No HTTP is parsed here: run each test once (tests/conftest.py parametrises it)."""
    return "h11"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(tmp_path: Path, ca: trustme.CA) -> ServerTLS:
    leaf = ca.issue_cert("localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    settings = TLSSettings(certfile=str(tmp_path / "cert.pem"), keyfile=str(tmp_path / "key.pem"))
    return load_server_tls(settings)


def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    near, far = trio.socket.socketpair()
    return trio.SocketStream(near), trio.SocketStream(far)


def tls_client(stream: trio.abc.Stream, ca: trustme.CA) -> trio.SSLStream[trio.abc.Stream]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return trio.SSLStream(stream, context, server_hostname="localhost")


async def handshake_both(transport: TLSTransport, client: trio.SSLStream[trio.abc.Stream]) -> None:
    outcome: list[str | None] = []

    async def server_side() -> None:
        outcome.append(await transport.handshake())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server_side)
        await client.do_handshake()
    assert outcome == [None]


async def test_the_handshake_sets_the_extension_and_bytes_go_both_ways(
    server_tls: ServerTLS, ca: trustme.CA
) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    client = tls_client(far, ca)
    await handshake_both(transport, client)
    assert transport.extension is not None
    assert transport.extension["server_cert"] == server_tls.server_cert
    assert transport.extension["tls_version"] in (0x0303, 0x0304)
    await transport.write(b"hello")
    assert await client.receive_some() == b"hello"
    await client.send_all(b"request")
    assert await transport.receive_some() == b"request"
    await client.send_all(b"polled")
    readable = transport.readable()
    assert readable is not None
    await readable
    assert transport.read_now() == b"polled"
    assert transport.read_now() is None  # nothing more yet
    await transport.aclose()
    # close_notify: a clean EOF for the client (a bare one would raise BrokenResourceError).
    assert await client.receive_some() == b""
    await client.aclose()


async def test_a_large_write_waits_for_the_reader(server_tls: ServerTLS, ca: trustme.CA) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    client = tls_client(far, ca)
    await handshake_both(transport, client)
    body = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
    done = trio.Event()

    async def writer() -> None:
        await transport.write(body, final=True)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()  # backpressure: the write waits for the client
        received = bytearray()
        while len(received) < len(body):
            received += await client.receive_some(1 << 20)
    assert bytes(received) == body
    assert not transport.broken
    await transport.aclose()
    await client.aclose()


async def test_a_write_cancelled_part_way_breaks_the_transport(
    server_tls: ServerTLS, ca: trustme.CA
) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    client = tls_client(far, ca)
    await handshake_both(transport, client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.write, b"x" * (8 << 20))
        await trio.testing.wait_all_tasks_blocked()  # the write waits for the socket
        nursery.cancel_scope.cancel()
    assert transport.broken
    with pytest.raises(ClientDisconnected):
        await transport.write(b"more")
    # Closing never waits, even with the peer reading nothing and the buffers full.
    with trio.fail_after(1):
        await transport.aclose()
    assert transport.closed
    await trio.aclose_forcefully(client)


def proxy_parse(found: list[bytes]) -> object:
    def parse(data: bytes) -> int | None:
        header = ProxyProtocolReader().feed(data)
        if header is None:
            return None
        found.append(data)
        return len(data) - len(header.rest)

    return parse


class HeaderFirst(trio.abc.Stream):
    """A client's stream that sends ``header`` in the clear before its first bytes, in the
    same write: the PROXY header and the ClientHello arrive together, as from HAProxy."""

    def __init__(self, stream: trio.abc.Stream, header: bytes) -> None:
        self.stream = stream
        self.header = header

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data, self.header = self.header + bytes(data), b""
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.stream.aclose()


async def test_a_proxy_header_is_read_exactly_and_tls_follows(
    server_tls: ServerTLS, ca: trustme.CA
) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    header = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 443\r\n"
    client = tls_client(HeaderFirst(far, header), ca)
    found: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        prefix = await transport.read_plain_prefix(proxy_parse(found))  # type: ignore[arg-type]
        assert prefix == header
        assert await transport.handshake() is None
    await client.send_all(b"after")
    assert await transport.receive_some() == b"after"
    await transport.aclose()
    await client.aclose()


async def test_a_proxy_header_in_pieces_is_taken_piece_by_piece(server_tls: ServerTLS) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    found: list[bytes] = []
    prefixes: list[bytes] = []

    async def read() -> None:
        prefixes.append(await transport.read_plain_prefix(proxy_parse(found)))  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await far.send_all(b"PROXY TCP4 203.0.113.7 ")
        await trio.testing.wait_all_tasks_blocked()
        assert not prefixes  # the first piece was taken; the reader waits for more
        await far.send_all(b"127.0.0.1 51234 443\r\n\x16\x03\x01")
    assert prefixes == [b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 443\r\n"]
    # What followed stays in the socket, for OpenSSL.
    assert transport._sock.recv(16) == b"\x16\x03\x01"
    await transport.aclose()
    await far.aclose()


async def test_a_connection_that_ends_before_its_prefix_reads_empty(
    server_tls: ServerTLS,
) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    await far.send_all(b"PROXY TCP4 ")
    await far.aclose()
    assert await transport.read_plain_prefix(proxy_parse([])) == b""  # type: ignore[arg-type]
    await transport.aclose()


async def test_garbage_is_a_failed_handshake_returned_not_raised(server_tls: ServerTLS) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    await far.send_all(b"\x16\x03\x01\x00\x05hello" + bytes(range(64)))
    failure = await transport.handshake()
    assert failure is not None
    assert failure.startswith("TLS handshake failed: ")
    assert transport.extension is None
    await transport.aclose()
    await far.aclose()


async def test_plain_http_gets_a_400_in_the_clear(server_tls: ServerTLS) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    await far.send_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert await transport.handshake() == "plain HTTP on the TLS port (answered 400)"
    answer = await far.receive_some()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    length = int(answer.split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(answer.partition(b"\r\n\r\n")[2]) == length
    await transport.aclose()
    await far.aclose()


async def test_a_client_gone_before_the_handshake_is_a_failure(server_tls: ServerTLS) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    await far.aclose()
    assert await transport.handshake() == ("TLS handshake failed: the client closed the connection")
    await transport.aclose()


async def test_closing_before_a_handshake_sends_nothing(
    server_tls: ServerTLS, autojump_clock: trio.testing.MockClock
) -> None:
    near, far = socket_pair()
    transport = TLSTransport(near, server_tls)
    started = trio.current_time()
    await transport.aclose()
    assert trio.current_time() == started
    assert await far.receive_some() == b""
    assert transport.read_now() == b""
    await far.aclose()
