"""Tier 3: ``http.response.zerocopysend`` and ``http.response.pathsend`` on loopback, where
the socket transport sends files with ``os.sendfile``: whole files, ranges, chunks,
keep-alive after a file, HEAD, a Content-Length the file breaks, a slow reader of a few MiB
(backpressure), a client that leaves mid-file, a missing file, and the read-and-write
fallback when the kernel refuses ``sendfile`` for a descriptor (a pipe).

Nothing sleeps: apps and tests meet on :class:`trio.Event`, every wait is bounded by
:func:`trio.fail_after`, and "the send has not returned" is checked after
:func:`trio.testing.wait_all_tasks_blocked`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import ClientDisconnected
from trio_asgi._net.transport import SocketTransport

from ..helpers import parse_responses, read_until_eof, start_server

TIMEOUT = 10  # seconds: the bound on any single wait; a passing test takes far less
DATA = os.urandom(300_000)  # bytes: several socket buffers' worth
BIG = 4 * 1024 * 1024 + 3  # bytes: the slow reader's file


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A file holding ``DATA``: its absolute path, and the file open for reading."""
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with path.open("rb") as file:
        yield str(path), file


def start(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http.response.start", "status": 200, "headers": headers or []}


async def fetch(nursery: trio.Nursery, app: Any, requests: bytes, methods: list[str]) -> bytes:
    """Serve ``app``, send ``requests`` on one connection (the last says close), read all."""
    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(requests)
            raw = await read_until_eof(stream)
        await server.shutdown()
    return raw


GET_CLOSE = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


async def test_zerocopysend_whole_file_range_and_chunks_on_one_connection(
    nursery: trio.Nursery, data_file: tuple[str, Any]
) -> None:
    _, file = data_file
    calls: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        calls.append(1)
        message = {"type": "http.response.zerocopysend", "file": file}
        await send(start())
        if len(calls) == 1:
            await send({**message, "offset": 0})  # the whole file
        elif len(calls) == 2:
            await send({**message, "offset": 1000, "count": 200_000})
        else:
            await send({**message, "offset": 0, "count": 100_000, "more_body": True})
            await send({"type": "http.response.body", "body": b"|", "more_body": True})
            await send({**message, "offset": 100_000, "count": 200_000, "more_body": True})
            await send({"type": "http.response.body"})

    get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = await fetch(nursery, app, get + get + GET_CLOSE, ["GET"] * 3)
    whole, ranged, chunked = parse_responses(raw, ["GET"] * 3)
    assert whole.body == DATA
    assert whole.header(b"content-length") == str(len(DATA)).encode()
    assert ranged.body == DATA[1000:201_000]
    assert ranged.header(b"content-length") == b"200000"
    assert chunked.body == DATA[:100_000] + b"|" + DATA[100_000:300_000]
    assert chunked.header(b"transfer-encoding") == b"chunked"


async def test_pathsend_sends_the_file_and_a_missing_one_gets_500(
    nursery: trio.Nursery, data_file: tuple[str, Any], tmp_path: Path
) -> None:
    path, _ = data_file
    paths = [path, str(tmp_path / "missing.bin")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start([(b"content-type", b"application/octet-stream")]))
        await send({"type": "http.response.pathsend", "path": paths.pop(0)})

    get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = await fetch(nursery, app, get + GET_CLOSE, ["GET"] * 2)
    found, missing = parse_responses(raw, ["GET"] * 2)
    assert found.body == DATA
    assert found.header(b"content-length") == str(len(DATA)).encode()
    assert missing.status == 500


async def test_head_gets_the_length_and_no_body(
    nursery: trio.Nursery, data_file: tuple[str, Any]
) -> None:
    path, _ = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send(start())
            await send({"type": "http.response.pathsend", "path": path})

    raw = await fetch(nursery, app, GET_CLOSE.replace(b"GET", b"HEAD"), ["HEAD"])
    [response] = parse_responses(raw, ["HEAD"])
    assert response.header(b"content-length") == str(len(DATA)).encode()
    assert raw.endswith(b"\r\n\r\n")


async def test_a_content_length_the_file_breaks_aborts_the_connection(
    nursery: trio.Nursery, data_file: tuple[str, Any]
) -> None:
    _, file = data_file
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start([(b"content-length", b"1000")]))
        message = {"type": "http.response.zerocopysend", "file": file, "offset": 0}
        await send({**message, "count": 600, "more_body": True})
        try:
            await send({**message, "count": 600})
        except RuntimeError as exc:
            errors.append(exc)

    raw = await fetch(nursery, app, GET_CLOSE, ["GET"])
    [error] = errors
    assert "Content-Length" in str(error)
    assert raw.partition(b"\r\n\r\n")[2] == DATA[:600]  # what fit, then the cut
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)


def slow_client_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    return sock


async def test_slow_reader_holds_back_a_large_file(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    content = os.urandom(BIG)
    path.write_bytes(content)
    sent = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start())
        await send({"type": "http.response.pathsend", "path": str(path)})
        sent.set()

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        sock = trio.socket.from_stdlib_socket(slow_client_socket())
        await sock.connect((server.host, server.port))
        async with trio.SocketStream(sock) as stream:
            await stream.send_all(GET_CLOSE)
            received = bytearray(await stream.receive_some(1000))
            await trio.testing.wait_all_tasks_blocked()
            # The client stopped reading: the file waits in the file, not in the server.
            assert not sent.is_set()
            received += await read_until_eof(stream)
        await sent.wait()
        await server.shutdown()
    [response] = parse_responses(bytes(received))
    assert response.body == content


async def test_client_leaving_mid_file_raises_client_disconnected(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(BIG))
    errors: list[Exception] = []
    done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start())
        try:
            await send({"type": "http.response.pathsend", "path": str(path)})
        except ClientDisconnected as exc:
            errors.append(exc)
        finally:
            done.set()

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        sock = trio.socket.from_stdlib_socket(slow_client_socket())
        await sock.connect((server.host, server.port))
        async with trio.SocketStream(sock) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await stream.receive_some(1000)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        await done.wait()  # closed with a reset: the server's next sendfile fails
        await server.shutdown()
    [error] = errors
    assert isinstance(error, ClientDisconnected)


async def test_socket_transport_falls_back_to_read_and_write_for_a_pipe() -> None:
    # os.sendfile(2) refuses a pipe as its source (EINVAL): the bytes go by os.read.
    left, right = trio.socket.socketpair()
    transport = SocketTransport(trio.SocketStream(left))
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"through a pipe")
        with trio.fail_after(TIMEOUT):
            assert await transport.sendfile(read_end, None, 7) == 7
            assert await transport.sendfile(read_end, None, 7) == 7
            await transport.write(b"!")
            assert await right.recv(100) == b"through a pipe!"
    finally:
        os.close(read_end)
        os.close(write_end)
        await transport.aclose()
        right.close()
