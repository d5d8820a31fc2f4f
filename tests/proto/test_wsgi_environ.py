"""Tier 1: PEP 3333's rules as pure values (``trio_asgi._interfaces.pep3333``): the
``environ`` built from an ASGI scope, ``wsgi.input`` over a fake fetch, ``start_response``,
``wsgi.errors`` and ``wsgi.file_wrapper``. The adapter on a real server:
tests/integration/test_wsgi.py.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pytest

from trio_asgi import InvalidMessage, UnexpectedMessage
from trio_asgi._http.scope import http_scope
from trio_asgi._interfaces.pep3333 import (
    ErrorStream,
    FileWrapper,
    RequestBody,
    ResponseStart,
    wsgi_environ,
)


def scope(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "method": b"GET",
        "target": b"/",
        "http_version": b"1.1",
        "headers": [(b"host", b"example.com")],
        "scheme": "http",
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "root_path": "",
        "state": {},
    }
    settings.update(overrides)
    return http_scope(**settings)


def environ(**overrides: Any) -> dict[str, Any]:
    return wsgi_environ(scope(**overrides), "INPUT", "ERRORS")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": ""}),
        ({"method": b"post"}, {"REQUEST_METHOD": "POST"}),
        ({"target": b"/a/b?x=1&y=%20"}, {"PATH_INFO": "/a/b", "QUERY_STRING": "x=1&y=%20"}),
        # percent-decoded bytes, decoded as latin-1 (PEP 3333 "Unicode Issues")
        ({"target": b"/caf%C3%A9/a%20b"}, {"PATH_INFO": "/caf\xc3\xa9/a b"}),
        ({"target": b"/%FF"}, {"PATH_INFO": "/\xff"}),
        # root_path is SCRIPT_NAME; a path that starts with it at a segment boundary loses it
        ({"root_path": "/app", "target": b"/app/x"}, {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}),
        ({"root_path": "/app", "target": b"/app"}, {"PATH_INFO": ""}),
        ({"root_path": "/app", "target": b"/apple"}, {"PATH_INFO": "/apple"}),
        ({"root_path": "/app", "target": b"/x"}, {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}),
        ({"root_path": "/café"}, {"SCRIPT_NAME": "/caf\xc3\xa9"}),
        ({"http_version": b"1.0"}, {"SERVER_PROTOCOL": "HTTP/1.0"}),
        ({}, {"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000"}),
        ({"server": None}, {"SERVER_NAME": "example.com", "SERVER_PORT": "80"}),
        ({"server": None, "scheme": "https"}, {"SERVER_PORT": "443"}),
        (
            {"server": None, "headers": [(b"host", b"h.test:8080")]},
            {"SERVER_NAME": "h.test", "SERVER_PORT": "8080"},
        ),
        (
            {"server": None, "headers": [(b"host", b"[::1]:81")]},
            {"SERVER_NAME": "::1", "SERVER_PORT": "81"},
        ),
        ({"server": None, "headers": []}, {"SERVER_NAME": "localhost", "SERVER_PORT": "80"}),
        ({}, {"REMOTE_ADDR": "10.0.0.1", "REMOTE_PORT": "5000"}),
        ({"scheme": "https"}, {"wsgi.url_scheme": "https"}),
        (
            {"headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]},
            {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "5"},
        ),
        (
            {"headers": [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3")]},
            {"HTTP_X_A": "1, 3", "HTTP_X_B": "2"},
        ),
        ({"headers": [(b"cookie", b"a=1"), (b"cookie", b"b=2")]}, {"HTTP_COOKIE": "a=1; b=2"}),
        ({"headers": [(b"x-caf\xe9", b"\xe9t\xe9")]}, {"HTTP_X_CAF\xc9": "\xe9t\xe9"}),
    ],
)
def test_environ_values(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    built = environ(**overrides)
    assert {key: built.get(key) for key in expected} == expected


def test_path_info_from_path_when_there_is_no_raw_path() -> None:
    built_scope = scope(target=b"/caf%C3%A9")
    del built_scope["raw_path"]
    assert wsgi_environ(built_scope, None, None)["PATH_INFO"] == "/caf\xc3\xa9"


def test_environ_has_every_wsgi_key() -> None:
    built = environ()
    assert built["wsgi.version"] == (1, 0)
    assert built["wsgi.input"] == "INPUT"
    assert built["wsgi.errors"] == "ERRORS"
    assert built["wsgi.multithread"] is True
    assert built["wsgi.multiprocess"] is False
    assert built["wsgi.run_once"] is False
    assert built["wsgi.file_wrapper"] is FileWrapper
    assert built["wsgi.input_terminated"] is True
    # every CGI value is a native str (PEP 3333 "environ Variables")
    assert all(type(v) is str for k, v in built.items() if not k.startswith("wsgi."))


def test_environ_leaves_out_what_the_request_lacks() -> None:
    built = environ(client=None, headers=[])
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST"):
        assert key not in built
    assert "HTTP_CONTENT_TYPE" not in environ(headers=[(b"content-type", b"a/b")])


def test_header_names_with_underscores_are_dropped() -> None:
    built = environ(headers=[(b"x-user", b"alice"), (b"x_user", b"mallory")])
    assert built["HTTP_X_USER"] == "alice"


def body(*chunks: bytes) -> tuple[RequestBody, list[int]]:
    """A RequestBody over ``chunks``; the list counts the fetches made so far."""
    pending = list(chunks)
    fetches = [0]

    def fetch() -> tuple[bytes, bool]:
        fetches[0] += 1
        if not pending:
            raise AssertionError("fetched past the end of the input")
        chunk = pending.pop(0)
        return chunk, bool(pending)

    return RequestBody(fetch), fetches


def test_read_n_fetches_only_what_it_needs() -> None:
    stream, fetches = body(b"abc", b"defg", b"h")
    assert stream.read(2) == b"ab"
    assert fetches == [1]
    assert stream.read(3) == b"cde"
    assert fetches == [2]
    assert stream.read(0) == b""
    assert stream.read(10) == b"fgh"
    assert stream.read(10) == b""
    assert stream.read() == b""
    assert fetches == [3]


@pytest.mark.parametrize("size", [-1, None])
def test_read_all(size: int | None) -> None:
    stream, _ = body(b"ab", b"", b"cd")
    assert stream.read(1) == b"a"
    assert stream.read(size) == b"bcd"
    assert stream.read(size) == b""


def test_readline_with_and_without_limit() -> None:
    stream, fetches = body(b"one\ntw", b"o\nthr", b"ee")
    assert stream.readline() == b"one\n"
    assert fetches == [1]
    assert stream.readline(2) == b"tw"
    assert fetches == [1]
    assert stream.readline(10) == b"o\n"
    assert stream.readline() == b"three"
    assert stream.readline() == b""


def test_readline_limit_stops_fetching() -> None:
    stream, fetches = body(b"abc", b"def\n")
    assert stream.readline(3) == b"abc"
    assert fetches == [1]


def test_readlines_and_iteration() -> None:
    stream, _ = body(b"a\nbb\n", b"ccc\nd")
    assert stream.readlines(3) == [b"a\n", b"bb\n"]
    assert list(stream) == [b"ccc\n", b"d"]
    again, _ = body(b"x\ny\n")
    assert again.readlines() == [b"x\n", b"y\n"]


def test_start_response_sets_status_and_headers() -> None:
    def write(data: bytes) -> None: ...

    start = ResponseStart(write)
    assert start.start_response("404 Not Found", [("X-A", "\xe9")]) is write
    assert start.status == 404
    assert start.headers == [(b"X-A", b"\xe9")]


def test_start_response_strips_whitespace_around_header_values() -> None:
    # Django's WSGIHandler sends cookies as ("Set-Cookie", " name=value") (RFC 9110 5.5:
    # the whitespace is not part of the value).
    start = ResponseStart(lambda data: None)
    start.start_response("200 OK", [("Set-Cookie", " a=b"), ("X-B", "c \t")])
    assert start.headers == [(b"Set-Cookie", b"a=b"), (b"X-B", b"c")]


def test_a_second_start_response_needs_exc_info() -> None:
    start = ResponseStart(lambda data: None)
    start.start_response("200 OK", [])
    with pytest.raises(UnexpectedMessage, match="second time"):
        start.start_response("500 Oops", [])
    try:
        raise KeyError("boom")
    except KeyError:
        start.start_response("500 Oops", [("A", "b")], sys.exc_info())
    assert (start.status, start.headers) == (500, [(b"A", b"b")])


def test_exc_info_after_the_head_was_sent_reraises() -> None:
    start = ResponseStart(lambda data: None)
    start.start_response("200 OK", [])
    start.head_sent = True
    try:
        raise KeyError("boom")
    except KeyError:
        with pytest.raises(KeyError, match="boom"):
            start.start_response("500 Oops", [], sys.exc_info())
    assert start.status == 200


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (b"200 OK", []),
        ("200", []),
        ("OK 200", []),
        ("200 OK", ()),
        ("200 OK", [("A", b"b")]),
        ("200 OK", [("A",)]),
        ("200 OK", [("A", "\u20ac")]),
    ],
)
def test_start_response_refuses_bad_values(status: Any, headers: Any) -> None:
    with pytest.raises(InvalidMessage):
        ResponseStart(lambda data: None).start_response(status, headers)


def test_error_stream_logs_each_line(caplog: pytest.LogCaptureFixture) -> None:
    stream = ErrorStream()
    with caplog.at_level(logging.ERROR, logger="trio_asgi.error"):
        stream.write("first\nsec")
        stream.writelines(["ond\n", "tail"])
        assert [r.getMessage() for r in caplog.records] == ["first", "second"]
        stream.flush()
        stream.flush()
    assert [r.getMessage() for r in caplog.records] == ["first", "second", "tail"]
    assert {r.name for r in caplog.records} == {"trio_asgi.error"}


def test_file_wrapper_reads_blocks_and_closes() -> None:
    file = io.BytesIO(b"abcdefg")
    wrapper = FileWrapper(file, 3)
    assert list(wrapper) == [b"abc", b"def", b"g"]
    wrapper.close()
    assert file.closed
