"""Tier 1: the pure scope builders and ASGI message checks in ``trio_asgi._http.scope``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi import InvalidMessage, TrioASGIError
from trio_asgi._http.messages import check_response_body, check_response_start
from trio_asgi._http.scope import decode_path, http_scope, split_target, websocket_scope

# -- split_target ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "raw_path", "query_string"),
    [
        # origin form (RFC 9112 section 3.2.1)
        (b"/", b"/", b""),
        (b"/a/b", b"/a/b", b""),
        (b"/a/b?x=1&y=2", b"/a/b", b"x=1&y=2"),
        (b"/a?", b"/a", b""),
        (b"/?x=1", b"/", b"x=1"),
        (b"/a?x=1?y=2", b"/a", b"x=1?y=2"),
        (b"/a?next=/b?c", b"/a", b"next=/b?c"),
        (b"/%2F%20?q=%20", b"/%2F%20", b"q=%20"),
        # absolute form (section 3.2.2): the path is taken from it
        (b"http://example.com/a/b?x=1", b"/a/b", b"x=1"),
        (b"https://example.com/a", b"/a", b""),
        (b"http://example.com:8080/p?q", b"/p", b"q"),
        (b"HTTP://Example.com/Case", b"/Case", b""),
        (b"http://example.com", b"/", b""),
        (b"https://example.com:443", b"/", b""),
        (b"http://example.com?x=1", b"/", b"x=1"),
        (b"http://example.com?next=/a/b", b"/", b"next=/a/b"),
        (b"http://example.com/?", b"/", b""),
        # asterisk form (section 3.2.4)
        (b"*", b"*", b""),
    ],
)
def test_split_target(target: bytes, raw_path: bytes, query_string: bytes) -> None:
    assert split_target(target) == (raw_path, query_string)


@given(st.binary())
def test_split_target_never_raises_and_splits_at_first_question_mark(target: bytes) -> None:
    raw_path, query_string = split_target(target)
    assert isinstance(raw_path, bytes)
    assert isinstance(query_string, bytes)
    assert b"?" not in raw_path


# -- decode_path -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "path"),
    [
        (b"", ""),
        (b"/", "/"),
        (b"/plain/ascii", "/plain/ascii"),
        (b"/a%20b", "/a b"),
        (b"/caf%C3%A9", "/café"),
        (b"/caf%c3%a9", "/café"),
        (b"/%E2%82%AC/%F0%9F%98%80", "/€/😀"),
        (b"/a%2Fb", "/a/b"),
        (b"/a+b", "/a+b"),  # '+' means space only in form bodies, not in paths
        (b"/100%", "/100%"),  # a lone '%' is kept
        (b"/%zz", "/%zz"),  # so is a '%' not followed by two hex digits
        (b"/%2", "/%2"),
        (b"/%ff", "/\ufffd"),  # invalid UTF-8 after decoding
        (b"/%C3", "/\ufffd"),  # truncated UTF-8 sequence
        (b"/caf\xc3\xa9", "/café"),  # raw UTF-8 bytes, no percent sign
        (b"/\xff", "/\ufffd"),  # raw invalid UTF-8, no percent sign
        (b"/\xff%20", "/\ufffd "),
    ],
)
def test_decode_path(raw_path: bytes, path: str) -> None:
    assert decode_path(raw_path) == path


@given(st.binary())
def test_decode_path_never_raises_for_any_bytes(raw_path: bytes) -> None:
    assert isinstance(decode_path(raw_path), str)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_decode_path_inverts_percent_encoding(text: str) -> None:
    assert decode_path(quote(text, safe="/").encode("ascii")) == text


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "%")
    )
)
def test_decode_path_keeps_ascii_without_percent_unchanged(text: str) -> None:
    assert decode_path(text.encode("ascii")) == text


# -- http_scope --------------------------------------------------------------------------

SCOPE_KEYS = {
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "root_path",
    "headers",
    "client",
    "server",
    "state",
    "extensions",
}


def make_scope(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "method": b"GET",
        "target": b"/caf%C3%A9/x?q=1&r=%20",
        "http_version": b"1.1",
        "headers": [(b"host", b"example.com")],
        "scheme": "http",
        "client": ("127.0.0.1", 51234),
        "server": ("127.0.0.1", 8000),
        "root_path": "",
        "state": {},
    }
    arguments.update(overrides)
    return http_scope(**arguments)


def test_http_scope_has_every_key_of_the_asgi_2_5_http_scope() -> None:
    headers = [(b"host", b"example.com"), (b"accept", b"*/*")]
    scope = make_scope(headers=headers, root_path="/api")
    assert set(scope) == SCOPE_KEYS
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/café/x",
        "raw_path": b"/caf%C3%A9/x",
        "query_string": b"q=1&r=%20",
        "root_path": "/api",
        "headers": headers,
        "client": ("127.0.0.1", 51234),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {
            "http.response.pathsend": {},
            "http.response.zerocopysend": {},
            "http.response.trailers": {},
            "http.response.early_hint": {},
        },
    }


def test_http_scope_value_types() -> None:
    scope = make_scope()
    assert isinstance(scope["http_version"], str)
    assert isinstance(scope["method"], str)
    assert isinstance(scope["path"], str)
    assert isinstance(scope["raw_path"], bytes)
    assert isinstance(scope["query_string"], bytes)
    assert isinstance(scope["root_path"], str)


@pytest.mark.parametrize(
    ("method", "expected"),
    [(b"GET", "GET"), (b"get", "GET"), (b"Post", "POST"), (b"PROPFIND", "PROPFIND")],
)
def test_http_scope_uppercases_the_method(method: bytes, expected: str) -> None:
    assert make_scope(method=method)["method"] == expected


@pytest.mark.parametrize("http_version", [b"1.0", b"1.1"])
def test_http_scope_http_version_is_a_str(http_version: bytes) -> None:
    assert make_scope(http_version=http_version)["http_version"] == http_version.decode()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_scope_carries_the_scheme(scheme: str) -> None:
    assert make_scope(scheme=scheme)["scheme"] == scheme


def test_http_scope_client_and_server_may_be_none() -> None:
    scope = make_scope(client=None, server=None)
    assert scope["client"] is None
    assert scope["server"] is None


def test_http_scope_does_not_prefix_path_with_root_path() -> None:
    scope = make_scope(target=b"/users/1", root_path="/api")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/users/1"
    assert scope["raw_path"] == b"/users/1"


def test_http_scope_absolute_form_target() -> None:
    scope = make_scope(target=b"http://example.com/a%20b?x=1")
    assert scope["path"] == "/a b"
    assert scope["raw_path"] == b"/a%20b"
    assert scope["query_string"] == b"x=1"


def test_http_scope_state_is_a_shallow_copy() -> None:
    shared = object()
    state = {"shared": shared}
    scope = make_scope(state=state)
    assert scope["state"] == state
    assert scope["state"] is not state
    assert scope["state"]["shared"] is shared
    scope["state"]["added_by_request"] = 1
    assert "added_by_request" not in state
    assert "added_by_request" not in make_scope(state=state)["state"]


def test_http_scope_keeps_header_order_and_duplicates() -> None:
    headers = [
        (b"host", b"example.com"),
        (b"cookie", b"a=1"),
        (b"accept", b"text/html"),
        (b"cookie", b"b=2"),
    ]
    assert make_scope(headers=headers)["headers"] == headers


def test_http_scope_returns_a_new_dict_each_time() -> None:
    first = make_scope()
    second = make_scope()
    assert first == second
    assert first is not second


@pytest.mark.parametrize("http_version", [b"1.1", b"1.2"])
def test_http_scope_advertises_trailers_and_early_hints_on_http_1_1_only(
    http_version: bytes,
) -> None:
    files = {"http.response.pathsend": {}, "http.response.zerocopysend": {}}
    extensions = make_scope(http_version=http_version)["extensions"]
    assert extensions == {**files, "http.response.trailers": {}, "http.response.early_hint": {}}
    # No chunked encoding to carry trailers, and no 1xx to an HTTP/1.0 client (RFC 8297);
    # files can be sent to any client (Content-Length from the file, or the close).
    assert make_scope(http_version=b"1.0")["extensions"] == files


def test_http_scope_extensions_are_a_new_dict_each_time() -> None:
    first = make_scope()
    first["extensions"]["http.response.trailers"]["mine"] = True
    first["extensions"]["app.own"] = {}
    second = make_scope()
    assert second["extensions"] == {
        "http.response.pathsend": {},
        "http.response.zerocopysend": {},
        "http.response.trailers": {},
        "http.response.early_hint": {},
    }
    # The WebSocket scope keeps only its own (the denial response).
    scope = websocket_scope(
        target=b"/",
        headers=[],
        subprotocols=[],
        scheme="ws",
        client=None,
        server=None,
        root_path="",
        state={},
    )
    assert scope["extensions"] == {"websocket.http.response": {}}


# -- check_response_start ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "http.response.start", "status": 200}, (200, [])),
        ({"type": "http.response.start", "status": 599, "headers": []}, (599, [])),
        (
            {"type": "http.response.start", "status": 404, "headers": [[b"a", b"1"]]},
            (404, [(b"a", b"1")]),
        ),
        (
            {
                "type": "http.response.start",
                "status": 201,
                "headers": ((b"a", b"1"), (b"a", b"2"), (b"B", b"3")),
            },
            (201, [(b"a", b"1"), (b"a", b"2"), (b"B", b"3")]),
        ),
    ],
)
def test_check_response_start_accepts_valid_messages(
    message: dict[str, Any], expected: tuple[int, list[tuple[bytes, bytes]]]
) -> None:
    assert check_response_start(message) == expected


def test_check_response_start_accepts_any_iterable_of_pairs() -> None:
    pairs = ((name, b"v") for name in (b"x", b"y"))
    message = {"type": "http.response.start", "status": 200, "headers": pairs}
    assert check_response_start(message) == (200, [(b"x", b"v"), (b"y", b"v")])


@pytest.mark.parametrize(
    ("message", "names"),
    [
        ({"type": "http.response.start"}, "status"),
        ({"type": "http.response.start", "status": None}, "status"),
        ({"type": "http.response.start", "status": "200"}, "status"),
        ({"type": "http.response.start", "status": 200.0}, "status"),
        ({"type": "http.response.start", "status": True}, "status"),
        ({"type": "http.response.start", "status": 100}, "status"),
        ({"type": "http.response.start", "status": 199}, "status"),
        ({"type": "http.response.start", "status": 600}, "status"),
        ({"type": "http.response.start", "status": -200}, "status"),
        ({"type": "http.response.start", "status": 200, "headers": None}, "headers"),
        ({"type": "http.response.start", "status": 200, "headers": 5}, "headers"),
        ({"type": "http.response.start", "status": 200, "headers": "ab"}, "headers"),
        ({"type": "http.response.start", "status": 200, "headers": [b"a"]}, "headers"),
        (
            {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b", b"c")]},
            "headers",
        ),
        ({"type": "http.response.start", "status": 200, "headers": [None]}, "headers"),
        ({"type": "http.response.start", "status": 200, "headers": {b"a": b"b"}}, "headers"),
        ({"type": "http.response.start", "status": 200, "headers": [("a", "b")]}, "bytes"),
        ({"type": "http.response.start", "status": 200, "headers": [(b"a", "b")]}, "bytes"),
        ({"type": "http.response.start", "status": 200, "headers": [("a", b"b")]}, "bytes"),
        ({"type": "http.response.start", "status": 200, "headers": [(b"a", None)]}, "bytes"),
        ({"type": "http.response.start", "status": 200, "headers": [(b"a", 1)]}, "bytes"),
        ({"type": "http.response.start", "status": 200, "headers": [b"ab"]}, "bytes"),
    ],
)
def test_check_response_start_rejects_invalid_messages(message: dict[str, Any], names: str) -> None:
    with pytest.raises(InvalidMessage, match=names) as info:
        check_response_start(message)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, TrioASGIError)
    assert "http.response.start" in str(info.value)


# -- check_response_body -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "http.response.body"}, (b"", False)),
        ({"type": "http.response.body", "body": b"abc"}, (b"abc", False)),
        ({"type": "http.response.body", "body": b"abc", "more_body": True}, (b"abc", True)),
        ({"type": "http.response.body", "body": b"", "more_body": False}, (b"", False)),
        ({"type": "http.response.body", "body": bytearray(b"ab")}, (b"ab", False)),
        ({"type": "http.response.body", "body": memoryview(b"ab")}, (b"ab", False)),
    ],
)
def test_check_response_body_accepts_valid_messages(
    message: dict[str, Any], expected: tuple[bytes, bool]
) -> None:
    body, more_body = check_response_body(message)
    assert (body, more_body) == expected
    assert type(body) is bytes


@pytest.mark.parametrize(
    ("message", "names"),
    [
        ({"type": "http.response.body", "body": "text"}, "'body'"),
        ({"type": "http.response.body", "body": None}, "'body'"),
        ({"type": "http.response.body", "body": 5}, "'body'"),
        ({"type": "http.response.body", "body": [b"a"]}, "'body'"),
        ({"type": "http.response.body", "more_body": 1}, "'more_body'"),
        ({"type": "http.response.body", "more_body": "yes"}, "'more_body'"),
        ({"type": "http.response.body", "more_body": None}, "'more_body'"),
    ],
)
def test_check_response_body_rejects_invalid_messages(message: dict[str, Any], names: str) -> None:
    with pytest.raises(InvalidMessage, match=names) as info:
        check_response_body(message)
    assert isinstance(info.value, TypeError)
    assert "http.response.body" in str(info.value)
