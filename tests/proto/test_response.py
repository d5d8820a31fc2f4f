"""ResponseWriter: the response serializer both parsers share (RFC 9112 sections 6-7)."""

from __future__ import annotations

import h11
import pytest

from trio_asgi._h11.response import FramingError, ResponseWriter, informational


def write(
    status: int,
    headers: list[tuple[bytes, bytes]],
    *chunks: bytes,
    method: bytes = b"GET",
    version: bytes | None = b"1.1",
    keep_alive: bool = True,
) -> tuple[ResponseWriter, bytes]:
    writer = ResponseWriter(
        status, headers, request_method=method, http_version=version, keep_alive=keep_alive
    )
    return writer, writer.head + b"".join(writer.body(c) for c in chunks) + writer.end()


def parse(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes, h11.Connection]:
    """Read ``data`` back with a client-side h11, the reference."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    response = client.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        else:
            assert isinstance(event, h11.EndOfMessage)
            return response, body, client


def test_content_length_body_is_written_as_is() -> None:
    writer, data = write(200, [(b"Content-Length", b"5")], b"he", b"llo")
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    assert writer.keep_alive


def test_no_length_on_http11_is_chunked() -> None:
    _, data = write(200, [(b"content-type", b"text/plain")], b"abc", b"", b"0123456789abcdef")
    assert data == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
    )
    response, body, _ = parse(data)
    assert (response.status_code, body) == (200, b"abc0123456789abcdef")


def test_no_length_on_http10_is_delimited_by_close() -> None:
    writer, data = write(200, [], b"abc", version=b"1.0", keep_alive=False)
    assert data == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc"
    assert not writer.keep_alive


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_drop_the_body_and_add_no_framing(status: int) -> None:
    _, data = write(status, [(b"content-length", b"3")], b"abc")
    assert data.endswith(b"content-length: 3\r\n\r\n")


def test_head_gets_get_headers_and_no_body() -> None:
    _, with_length = write(200, [(b"content-length", b"3")], b"abc", method=b"HEAD")
    assert with_length == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"
    writer, chunked = write(200, [], b"abc", method=b"HEAD")
    assert chunked == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    assert writer.no_body


def test_closing_adds_connection_close_once() -> None:
    _, data = write(200, [(b"content-length", b"0")], keep_alive=False)
    assert data.count(b"connection: close") == 1
    writer, data = write(200, [(b"Connection", b"close"), (b"content-length", b"0")])
    assert not writer.keep_alive  # the app asked to close
    assert data.lower().count(b"connection") == 1


def test_closing_replaces_an_apps_keep_alive_token() -> None:
    _, data = write(200, [(b"connection", b"keep-alive, x-custom")], keep_alive=False)
    assert b"keep-alive" not in data
    assert b"connection: x-custom, close\r\n" in data


def test_too_much_and_too_little_body() -> None:
    writer = ResponseWriter(
        200,
        [(b"content-length", b"3")],
        request_method=b"GET",
        http_version=b"1.1",
        keep_alive=True,
    )
    with pytest.raises(FramingError, match="Too much data"):
        writer.body(b"abcd")
    assert writer.body(b"ab") == b"ab"
    with pytest.raises(FramingError, match="Too little data"):
        writer.end()


@pytest.mark.parametrize(
    "headers",
    [
        [(b"bad name", b"x")],
        [(b"", b"x")],
        [(b"x-a", b"line\r\nInjected: yes")],
        [(b"x-a", b" leading space")],
        [(b"x-a", b"nul\x00")],
        [(b"content-length", b"ten")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"1, 2")],
        [(b"content-length", b"1"), (b"Content-Length", b"2")],
    ],
)
def test_invalid_headers_are_refused_before_anything_is_written(
    headers: list[tuple[bytes, bytes]],
) -> None:
    with pytest.raises(FramingError):
        ResponseWriter(200, headers, request_method=b"GET", http_version=b"1.1", keep_alive=True)


def test_repeated_equal_content_lengths_are_one() -> None:
    _, data = write(200, [(b"content-length", b"2, 2")], b"ok")
    assert parse(data)[1] == b"ok"


def test_unknown_status_has_an_empty_reason_and_is_still_valid() -> None:
    _, data = write(599, [(b"content-length", b"0")])
    assert data.startswith(b"HTTP/1.1 599 \r\n")
    assert parse(data)[0].status_code == 599


def test_informational() -> None:
    assert informational(100) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_server_defaults_come_first_and_count_for_nothing_else() -> None:
    writer = ResponseWriter(
        200,
        [(b"content-length", b"2")],
        request_method=b"GET",
        http_version=b"1.1",
        keep_alive=True,
        defaults=[(b"date", b"Mon, 23 Nov 2026 22:30:17 GMT"), (b"server", b"trio-asgi")],
    )
    assert writer.head == (
        b"HTTP/1.1 200 OK\r\ndate: Mon, 23 Nov 2026 22:30:17 GMT\r\nserver: trio-asgi\r\n"
        b"content-length: 2\r\n\r\n"
    )
    assert writer.keep_alive
