"""Tier 2: ``TLSTransport`` and ``PrefixedStream`` (trio_asgi/_net/tls_transport.py) over
``trio.testing`` memory streams, a client ``trio.SSLStream`` on the other end, timeouts
under ``MockClock``: the handshake's outcomes, ``unread`` before the handshake, the
close_notify sent on close and bounded by ``CLOSE_NOTIFY_TIMEOUT`` when the peer reads
nothing, and no TLS at all on close for a connection that never completed its handshake."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme

from trio_asgi._net.tls import ServerTLS, TLSSettings, load_server_tls
from trio_asgi._net.tls_transport import CLOSE_NOTIFY_TIMEOUT, PrefixedStream, TLSTransport


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


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_a_prefixed_stream_returns_its_prefix_first() -> None:
    near, far = trio.testing.memory_stream_pair()
    prefixed = PrefixedStream(near)
    prefixed.prefix = b"abcdef"
    await far.send_all(b"ghi")
    assert await prefixed.receive_some(4) == b"abcd"
    assert await prefixed.receive_some() == b"ef"
    assert await prefixed.receive_some() == b"ghi"
    await prefixed.send_all(b"out")
    assert await far.receive_some() == b"out"
    await prefixed.wait_send_all_might_not_block()
    await prefixed.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await near.send_all(b"x")


async def test_a_handshake_sets_the_extension_and_close_sends_close_notify(
    server_tls: ServerTLS, ca: trustme.CA
) -> None:
    near, far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    client = trio.SSLStream(far, client_context(ca), server_hostname="localhost")
    failures: list[str | None] = []
    async with trio.open_nursery() as nursery:

        async def serve_side() -> None:
            failures.append(await transport.handshake())

        nursery.start_soon(serve_side)
        await client.do_handshake()
    assert failures == [None]
    assert transport.extension is not None
    assert transport.extension["server_cert"] == server_tls.server_cert
    await transport.write(b"hello")
    assert await client.receive_some() == b"hello"
    await client.send_all(b"request")
    assert await transport.receive_some() == b"request"
    await transport.aclose()
    # close_notify: a clean EOF for the client (a bare one would raise BrokenResourceError).
    assert await client.receive_some() == b""


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


async def test_what_followed_the_proxy_header_is_read_by_the_tls_layer(
    server_tls: ServerTLS, ca: trustme.CA
) -> None:
    near, far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=True)
    client = trio.SSLStream(
        HeaderFirst(far, b"PROXY UNKNOWN\r\n"), client_context(ca), server_hostname="localhost"
    )
    outcome: list[str | None] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        first = await transport.receive_plain()
        header, _, rest = first.partition(b"\r\n")
        assert header == b"PROXY UNKNOWN"
        assert rest.startswith(b"\x16\x03")  # the ClientHello's record header
        transport.unread(rest)
        outcome.append(await transport.handshake())
    assert outcome == [None]
    await client.send_all(b"after")
    assert await transport.receive_some() == b"after"


async def test_unread_needs_a_prefixable_transport(server_tls: ServerTLS) -> None:
    near, _far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    with pytest.raises(RuntimeError, match="prefixable=True"):
        transport.unread(b"x")


async def test_garbage_is_a_failed_handshake_returned_not_raised(server_tls: ServerTLS) -> None:
    near, far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    await far.send_all(b"\x16\x03\x01\x00\x05hello" + bytes(range(64)))
    failure = await transport.handshake()
    assert failure is not None
    assert failure.startswith("TLS handshake failed: ")
    assert transport.extension is None


async def test_plain_http_gets_a_400_in_the_clear(server_tls: ServerTLS) -> None:
    near, far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    await far.send_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert await transport.handshake() == "plain HTTP on the TLS port (answered 400)"
    answer = await far.receive_some()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    length = int(answer.split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(answer.partition(b"\r\n\r\n")[2]) == length


async def test_a_client_gone_before_the_handshake_is_a_failure(server_tls: ServerTLS) -> None:
    near, far = trio.testing.memory_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    await far.aclose()
    assert await transport.handshake() == ("TLS handshake failed: the client closed the connection")


async def test_closing_before_a_handshake_sends_nothing_and_waits_for_nothing(
    server_tls: ServerTLS, autojump_clock: trio.testing.MockClock
) -> None:
    near, far = trio.testing.lockstep_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    started = trio.current_time()
    await transport.aclose()
    assert trio.current_time() == started  # SSLStream.aclose would try a handshake first
    assert await far.receive_some() == b""


async def test_close_notify_is_bounded_when_the_peer_reads_nothing(
    server_tls: ServerTLS, ca: trustme.CA, autojump_clock: trio.testing.MockClock
) -> None:
    # lockstep: a write waits until the other side reads; after the handshake the client
    # reads nothing, so the close_notify cannot go out.
    near, far = trio.testing.lockstep_stream_pair()
    transport = TLSTransport(near, server_tls, prefixable=False)
    client = trio.SSLStream(far, client_context(ca), server_hostname="localhost")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.handshake)
        await client.do_handshake()
    assert transport.extension is not None
    started = trio.current_time()
    await transport.aclose()
    assert trio.current_time() - started == pytest.approx(CLOSE_NOTIFY_TIMEOUT)
    assert transport.closed
