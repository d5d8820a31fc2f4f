"""Tier 2: how the HTTP/1.1 driver frames and heads the responses apps send.

Chunked or Content-Length framing, HEAD and the no-body statuses, the app's
Transfer-Encoding, the Date and Server defaults, reason phrases, and when the head is written.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import trio
import trio.testing

from ..helpers import H11Client, hello_app, open_connection, read_until_eof
from ..http11_tools import (
    header_values,
    parse_responses,
    raw_request,
    respond,
    start_connection,
)

# -- response framing and headers --------------------------------------------------------


async def close_and_read(app: Any, request: bytes | None = None, **config: Any) -> bytes:
    """Send one ``Connection: close`` request to ``app``; every byte the server answers."""
    if request is None:
        request = raw_request(headers=[(b"Host", b"t"), (b"Connection", b"close")])
    async with trio.open_nursery() as nursery:
        served = await start_connection(nursery, app, **config)
        await served.client.send_all(request)
        raw = await read_until_eof(served.client)
        await served.client.aclose()  # ends the server's lingering close
        await served.done.wait()
    return raw


async def chunks_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b" world", "more_body": True})
    await send({"type": "http.response.body"})


async def test_response_without_content_length_is_chunked() -> None:
    raw = await close_and_read(chunks_app)
    [response] = parse_responses(raw)
    assert response.body == b"hello world"
    assert header_values(response, b"transfer-encoding") == [b"chunked"]
    assert response.header(b"content-length") is None
    assert raw.endswith(b"\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


async def test_response_content_length_is_honoured() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b" world"})

    raw = await close_and_read(app)
    [response] = parse_responses(raw)
    assert response.body == b"hello world"
    assert header_values(response, b"content-length") == [b"11"]
    assert response.header(b"transfer-encoding") is None
    assert raw.endswith(b"\r\n\r\nhello world")


async def test_head_response_has_headers_but_no_body(nursery: trio.Nursery) -> None:
    stream, _ = await open_connection(nursery, hello_app)
    client = H11Client(stream)
    response = await client.request("HEAD")
    assert response.status == 200
    assert response.header(b"content-length") == b"13"
    assert response.body == b""
    # No stray body bytes on the connection: the next response parses cleanly.
    assert (await client.request()).body == b"Hello, world!"


async def test_head_response_bytes_end_after_the_head() -> None:
    request = raw_request(b"HEAD", b"/", [(b"Host", b"t"), (b"Connection", b"close")])
    raw = await close_and_read(hello_app, request)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")
    assert b"Hello" not in raw


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_drop_the_apps_body(nursery: trio.Nursery, status: int) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"oops", "more_body": True})
        await send({"type": "http.response.body", "body": b"oops"})

    stream, _ = await open_connection(nursery, app)
    client = H11Client(stream)
    for _ in range(2):  # the second request proves nothing was left on the wire
        response = await client.request()
        assert response.status == status
        assert response.body == b""
        assert response.header(b"transfer-encoding") is None


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_status_bytes_end_after_the_head(status: int) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"oops"})

    raw = await close_and_read(app)
    assert raw.startswith(f"HTTP/1.1 {status} ".encode())
    assert raw.endswith(b"\r\n\r\n")
    assert b"oops" not in raw


async def test_apps_transfer_encoding_is_replaced_by_content_length() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"Transfer-Encoding", b"gzip"), (b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    raw = await close_and_read(app)
    [response] = parse_responses(raw)
    assert response.body == b"hello"
    assert response.header(b"transfer-encoding") is None
    assert b"gzip" not in raw


async def test_apps_transfer_encoding_chunked_is_not_duplicated() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    [response] = parse_responses(await close_and_read(app))
    assert response.body == b"hello"
    assert header_values(response, b"transfer-encoding") == [b"chunked"]


async def test_date_and_server_headers_by_default() -> None:
    [response] = parse_responses(await close_and_read(hello_app))
    assert header_values(response, b"server") == [b"trio-asgi"]
    [date] = header_values(response, b"date")
    assert parsedate_to_datetime(date.decode()).tzname() == "UTC"


async def test_date_header_can_be_turned_off() -> None:
    [response] = parse_responses(await close_and_read(hello_app, date_header=False))
    assert header_values(response, b"date") == []
    assert header_values(response, b"server") == [b"trio-asgi"]


async def test_server_header_can_be_turned_off() -> None:
    [response] = parse_responses(await close_and_read(hello_app, server_header=False))
    assert header_values(response, b"server") == []
    assert len(header_values(response, b"date")) == 1


async def test_apps_own_date_and_server_headers_are_not_duplicated() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [
            (b"Server", b"my-app"),
            (b"DATE", b"Thu, 01 Jan 1970 00:00:00 GMT"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body"})

    [response] = parse_responses(await close_and_read(app))
    assert header_values(response, b"server") == [b"my-app"]
    assert header_values(response, b"date") == [b"Thu, 01 Jan 1970 00:00:00 GMT"]


async def test_apps_headers_keep_their_order_and_duplicates() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [
            (b"set-cookie", b"a=1"),
            (b"x-other", b"1"),
            (b"set-cookie", b"b=2"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body"})

    [response] = parse_responses(await close_and_read(app, date_header=False))
    assert [(k, v) for k, v in response.headers if k in (b"set-cookie", b"x-other")] == [
        (b"set-cookie", b"a=1"),
        (b"x-other", b"1"),
        (b"set-cookie", b"b=2"),
    ]


@pytest.mark.parametrize(("status", "reason"), [(200, b"OK"), (404, b"Not Found"), (599, b"")])
async def test_status_line_carries_the_standard_reason(status: int, reason: bytes) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send, status=status)

    raw = await close_and_read(app)
    assert raw.startswith(b"HTTP/1.1 %d %s\r\n" % (status, reason))


async def test_response_head_is_held_until_the_first_body_message(
    nursery: trio.Nursery,
) -> None:
    send_body = trio.Event()
    writes: list[bytes] = []
    got_first_write = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send_body.wait()
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    stream, _ = await open_connection(nursery, app)

    async def read_first_write() -> None:
        writes.append(bytes(await stream.receive_some()))
        got_first_write.set()

    nursery.start_soon(read_first_write)  # waiting already, so it sees the first write alone
    await stream.send_all(raw_request())
    await trio.testing.wait_all_tasks_blocked()
    assert writes == []  # the app sent http.response.start, but nothing is written yet

    send_body.set()
    await got_first_write.wait()
    [first_write] = writes
    assert first_write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first_write.endswith(b"\r\n\r\n5\r\nfirst\r\n")
