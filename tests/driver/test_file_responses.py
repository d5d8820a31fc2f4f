"""Tier 2: ``http.response.zerocopysend`` and ``http.response.pathsend`` (ASGI extensions
spec, "Zero Copy Send" and "Path Send") over memory streams: the transport's read-and-write
path (``StreamTransport.sendfile``, the one TLS will take), the framing (Content-Length set
by the server, chunks, a declared length that the file does not keep), HEAD, message order,
backpressure with one bounded chunk in memory, and a client that leaves mid-file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import ClientDisconnected, InvalidMessage, UnexpectedMessage
from trio_asgi._net.transport import FILE_CHUNK_SIZE

from ..helpers import read_until_eof
from ..http11_tools import (
    FailingStream,
    StreamPair,
    header_values,
    parse_responses,
    raw_request,
    start_connection,
)

DATA = bytes(range(256)) * 40  # 10240 bytes, every byte value


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A file holding ``DATA``: its absolute path, and the file open for reading."""
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with path.open("rb") as file:
        yield str(path), file


async def exchange(
    app: Any,
    *,
    method: bytes = b"GET",
    pair: StreamPair | None = None,
    http_version: bytes = b"1.1",
) -> bytes:
    """One ``Connection: close`` request to ``app``; every byte the server answers."""
    request = raw_request(
        method, headers=[(b"Host", b"t"), (b"Connection", b"close")], http_version=http_version
    )
    async with trio.open_nursery() as nursery:
        extra = {} if pair is None else {"pair": pair}
        served = await start_connection(nursery, app, **extra)
        await served.client.send_all(request)
        raw = await read_until_eof(served.client)
        await served.client.aclose()
        await served.done.wait()
    return raw


def start(headers: list[tuple[bytes, bytes]] | None = None, status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


# -- advertising ------------------------------------------------------------------------


async def test_scope_advertises_both_extensions_in_a_fresh_dict_per_request() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not scopes:  # the first request's app changes its scope's extensions
            scope["extensions"]["http.response.pathsend"]["mutated"] = True
        scopes.append(scope)
        await send(start([(b"content-length", b"0")]))
        await send({"type": "http.response.body"})

    await exchange(app)
    await exchange(app)
    first, second = scopes
    assert second["extensions"]["http.response.pathsend"] == {}
    assert second["extensions"]["http.response.zerocopysend"] == {}
    assert first["extensions"] is not second["extensions"]


# -- zerocopysend ---------------------------------------------------------------------


async def test_zerocopysend_whole_file_gets_a_content_length(data_file: tuple[str, Any]) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start([(b"content-type", b"application/octet-stream")]))
        await send({"type": "http.response.zerocopysend", "file": file})

    [response] = parse_responses(await exchange(app))
    assert response.body == DATA
    assert header_values(response, b"content-length") == [str(len(DATA)).encode()]
    assert header_values(response, b"transfer-encoding") == []


async def test_zerocopysend_offset_and_count_and_an_int_descriptor(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        message = {"type": "http.response.zerocopysend", "file": file.fileno()}
        await send({**message, "offset": 1000, "count": 300})

    [response] = parse_responses(await exchange(app))
    assert response.body == DATA[1000:1300]
    assert response.header(b"content-length") == b"300"


async def test_zerocopysend_without_offset_reads_from_the_position_and_advances_it(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file
    file.seek(10)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        message = {"type": "http.response.zerocopysend", "file": file, "more_body": True}
        await send({**message, "count": 5})
        await send({**message, "count": 7})
        await send({"type": "http.response.zerocopysend", "file": file})  # to the end

    raw = await exchange(app)
    [response] = parse_responses(raw)
    assert response.body == DATA[10:]
    assert file.tell() == len(DATA)


async def test_several_zerocopysends_mixed_with_body_are_one_chunk_each(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        message = {"type": "http.response.zerocopysend", "file": file, "more_body": True}
        await send({**message, "offset": 0, "count": 3})
        await send({"type": "http.response.body", "body": b"-", "more_body": True})
        await send({**message, "offset": 256 + 65, "count": 2})
        await send({**message, "offset": 0, "count": 0})  # nothing: no chunk
        await send({"type": "http.response.body"})

    raw = await exchange(app)
    [response] = parse_responses(raw)
    assert response.body == b"\x00\x01\x02-AB"
    assert header_values(response, b"transfer-encoding") == [b"chunked"]
    assert raw.endswith(b"\r\n\r\n3\r\n\x00\x01\x02\r\n1\r\n-\r\n2\r\nAB\r\n0\r\n\r\n")


async def test_zerocopysends_within_a_declared_content_length(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start([(b"content-length", b"150")]))
        message = {"type": "http.response.zerocopysend", "file": file}
        await send({**message, "offset": 0, "count": 100, "more_body": True})
        await send({**message, "offset": 100, "count": 50})

    [response] = parse_responses(await exchange(app))
    assert response.body == DATA[:150]
    assert header_values(response, b"content-length") == [b"150"]


@pytest.mark.parametrize(("declared", "counts"), [(b"10", [11]), (b"10", [6, 6]), (b"10", [9])])
async def test_zerocopysend_that_breaks_the_content_length_raises_and_aborts(
    data_file: tuple[str, Any], declared: bytes, counts: list[int]
) -> None:
    _, file = data_file
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start([(b"content-length", declared)]))
        try:
            for index, count in enumerate(counts):
                more_body = index < len(counts) - 1
                message = {"type": "http.response.zerocopysend", "file": file}
                await send({**message, "offset": 0, "count": count, "more_body": more_body})
        except UnexpectedMessage as exc:
            errors.append(exc)

    raw = await exchange(app)
    [error] = errors
    assert "Content-Length" in str(error)
    # Never a complete response (nor a 500 after a part of one): the connection is cut.
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)


async def test_a_file_shorter_than_count_aborts_the_response(data_file: tuple[str, Any]) -> None:
    _, file = data_file
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        message = {"type": "http.response.zerocopysend", "file": file, "offset": len(DATA) - 4}
        try:
            await send({**message, "count": 10})
        except UnexpectedMessage as exc:
            errors.append(exc)

    raw = await exchange(app)
    [error] = errors
    assert "ended before" in str(error)
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)


async def test_head_response_sends_the_length_and_no_body(data_file: tuple[str, Any]) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.zerocopysend", "file": file})

    raw = await exchange(app, method=b"HEAD")
    [response] = parse_responses(raw, methods=["HEAD"])
    assert response.header(b"content-length") == str(len(DATA)).encode()
    assert raw.endswith(b"\r\n\r\n")
    assert DATA[:16] not in raw


async def test_http_1_0_client_gets_a_content_length_and_the_file(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.zerocopysend", "file": file, "count": 100})

    raw = await exchange(app, http_version=b"1.0")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: 100" in head
    assert body == DATA[:100]


@pytest.mark.parametrize(
    ("message", "error_type", "match"),
    [
        ({"file": None}, InvalidMessage, "'file'"),
        ({"file": "data.bin"}, InvalidMessage, "'file'"),
        ({"file": -1}, InvalidMessage, "'file'"),
        ({"offset": -1}, InvalidMessage, "'offset'"),
        ({"count": "10"}, InvalidMessage, "'count'"),
        ({"more_body": 1}, InvalidMessage, "'more_body'"),
    ],
)
async def test_malformed_zerocopysend_is_refused_and_answered_500(
    data_file: tuple[str, Any], message: dict[str, Any], error_type: type, match: str
) -> None:
    _, file = data_file
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        try:
            await send({"type": "http.response.zerocopysend", "file": file, **message})
        except Exception as exc:
            errors.append(exc)
            raise

    [response] = parse_responses(await exchange(app))
    assert response.status == 500
    [error] = errors
    assert isinstance(error, error_type)
    assert match in str(error)


async def test_zerocopysend_before_start_is_unexpected_and_after_the_end_ignored(
    data_file: tuple[str, Any],
) -> None:
    _, file = data_file
    errors: list[Exception] = []
    message = {"type": "http.response.zerocopysend", "file": file}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await send(message)
        except UnexpectedMessage as exc:
            errors.append(exc)
        await send(start([(b"content-length", b"0")]))
        await send({"type": "http.response.body"})
        await send(message)  # "any further messages on the channel will be ignored"

    [response] = parse_responses(await exchange(app))
    assert (response.status, response.body) == (200, b"")
    [before] = errors
    assert "before its start" in str(before)


# -- pathsend --------------------------------------------------------------------------


async def test_pathsend_sends_the_whole_file_with_its_length(data_file: tuple[str, Any]) -> None:
    path, _ = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start([(b"content-type", b"application/octet-stream")]))
        await send({"type": "http.response.pathsend", "path": path})

    [response] = parse_responses(await exchange(app))
    assert response.body == DATA
    assert header_values(response, b"content-length") == [str(len(DATA)).encode()]


async def test_pathsend_keeps_the_apps_content_length(data_file: tuple[str, Any]) -> None:
    path, _ = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start([(b"content-length", str(len(DATA)).encode())]))
        await send({"type": "http.response.pathsend", "path": path})

    [response] = parse_responses(await exchange(app))
    assert response.body == DATA
    assert header_values(response, b"content-length") == [str(len(DATA)).encode()]


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("/nonexistent/trio-asgi/missing.bin", "cannot send"),
        ("relative/file.bin", "absolute path"),
        (b"/bytes/path", "absolute path"),
        ("DIRECTORY", "not a regular file"),
    ],
)
async def test_pathsend_of_a_bad_path_raises_invalid_message_and_is_answered_500(
    tmp_path: Path, path: Any, match: str
) -> None:
    if path == "DIRECTORY":
        path = str(tmp_path)
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        try:
            await send({"type": "http.response.pathsend", "path": path})
        except InvalidMessage as exc:
            errors.append(exc)
            raise

    [response] = parse_responses(await exchange(app))
    assert response.status == 500
    [error] = errors
    assert match in str(error)
    assert not isinstance(error, OSError)  # an app must not take it for a disconnect


async def test_pathsend_after_a_body_message_is_unexpected(data_file: tuple[str, Any]) -> None:
    path, _ = data_file
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        try:
            await send({"type": "http.response.pathsend", "path": path})
        except UnexpectedMessage as exc:
            errors.append(exc)
        await send({"type": "http.response.body"})

    [response] = parse_responses(await exchange(app))
    assert response.body == b"x"
    [error] = errors
    assert "cannot follow 'http.response.body'" in str(error)


async def test_pathsend_does_not_leak_its_descriptor(data_file: tuple[str, Any]) -> None:
    path, _ = data_file

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.pathsend", "path": path})

    before = set(os.listdir("/proc/self/fd"))
    [response] = parse_responses(await exchange(app))
    assert response.body == DATA
    assert set(os.listdir("/proc/self/fd")) <= before


# -- backpressure and disconnects -------------------------------------------------------


class RecordingStream(FailingStream):
    """Passes everything to ``inner`` (no failures); records the size of each ``send_all``."""

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        super().__init__(inner, [])
        self.sizes: list[int] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sizes.append(len(data))
        await self.inner.send_all(data)


BIG = 2 * 1024 * 1024 + 17  # bytes: a file of many chunks


async def test_large_file_waits_for_a_slow_reader_one_chunk_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    content = os.urandom(BIG)
    path.write_bytes(content)
    recorder: list[RecordingStream] = []

    def pair() -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
        client, server = trio.testing.lockstep_stream_pair()
        recorder.append(RecordingStream(server))
        return client, recorder[0]

    sent = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.pathsend", "path": str(path)})
        sent.set()

    request = raw_request(headers=[(b"Host", b"t"), (b"Connection", b"close")])
    async with trio.open_nursery() as nursery:
        served = await start_connection(nursery, app, pair=pair)
        await served.client.send_all(request)
        received = bytearray(await served.client.receive_some(1000))
        await trio.testing.wait_all_tasks_blocked()
        # The client stopped reading: the send waits, the file is not read ahead.
        assert not sent.is_set()
        assert sum(recorder[0].sizes) <= FILE_CHUNK_SIZE + len(received)
        received += await read_until_eof(served.client)
        await served.client.aclose()
        await served.done.wait()
    assert sent.is_set()
    [response] = parse_responses(bytes(received))
    assert response.body == content
    assert max(recorder[0].sizes) <= FILE_CHUNK_SIZE


async def test_client_leaving_mid_file_raises_client_disconnected(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(BIG))
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start())
        try:
            await send({"type": "http.response.pathsend", "path": str(path)})
        except ClientDisconnected as exc:
            errors.append(exc)

    request = raw_request(headers=[(b"Host", b"t")])
    async with trio.open_nursery() as nursery:
        served = await start_connection(nursery, app, pair=trio.testing.lockstep_stream_pair)
        await served.client.send_all(request)
        await served.client.receive_some(FILE_CHUNK_SIZE)
        await served.client.aclose()
        await served.done.wait()
    [error] = errors
    assert isinstance(error, ClientDisconnected)
