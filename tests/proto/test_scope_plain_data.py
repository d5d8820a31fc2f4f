"""Tier 1: every scope is plain data, so ``json.dumps(scope, default=bytes.decode)`` works.

Teaching examples print the scope that way. Plain data means values of exactly these types,
checked recursively: ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``, ``list``,
``tuple``, ``dict`` (exact types: a ``NamedTuple`` such as ``TCPAddress`` or
``ConnectionInfo`` is a tuple subclass, which ``json`` would quietly accept but which is not
what the ASGI spec asks for ``client`` and ``server``: a two-item iterable, a plain tuple here).

Hypothesis generates requests (methods, origin- and absolute-form targets with query strings
and percent-escapes, headers with UTF-8 values), each is parsed by both request parsers, and
the ``http`` and ``websocket`` scopes are built from the parsed head with
:func:`~trio_asgi._http.scope.http_scope` and :func:`~trio_asgi._http.scope.websocket_scope`.
The end-to-end half (an app on the real server dumps its scope) is
``tests/integration/test_scope_plain_data.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._h11.httptools import HAVE_HTTPTOOLS, HttptoolsParser
from trio_asgi._h11.parsing import H11Parser, RequestHead, RequestParser
from trio_asgi._http.scope import http_scope, websocket_scope

PLAIN_TYPES = (str, bytes, int, float, bool, type(None), list, tuple, dict)
MAX_HEADER_SIZE = 64 * 1024
PARSERS = [H11Parser, *([HttptoolsParser] if HAVE_HTTPTOOLS else [])]


def non_plain(value: Any, where: str = "scope") -> list[str]:
    """Where ``value`` holds something that is not of exactly one of :data:`PLAIN_TYPES`."""
    if type(value) not in PLAIN_TYPES:
        return [f"{where}: {type(value).__name__} {value!r}"]
    if type(value) is dict:
        found = [f"{where}: key {key!r}" for key in value if type(key) is not str]
        for key, item in value.items():
            found += non_plain(item, f"{where}[{key!r}]")
        return found
    if type(value) in (list, tuple):
        return [bad for i, item in enumerate(value) for bad in non_plain(item, f"{where}[{i}]")]
    return []


def test_non_plain_finds_a_named_tuple() -> None:
    from trio_asgi._types import TCPAddress

    assert non_plain({"server": TCPAddress("::1", 80)}) == [
        "scope['server']: TCPAddress TCPAddress(host='::1', port=80)"
    ]


TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&'*+-.^_`|~",
    min_size=1,
    max_size=12,
)
_PCHAR = st.one_of(
    st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@")),
    st.integers(0, 255).map(lambda byte: f"%{byte:02X}"),  # any byte, escaped
    st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF).map(
        lambda char: "".join(f"%{byte:02X}" for byte in char.encode())
    ),
)
SEGMENT = st.lists(_PCHAR, max_size=8).map("".join)
PATH = st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
QUERY = st.lists(st.one_of(_PCHAR, st.sampled_from(["/", "?"])), max_size=12).map("".join)
TARGET = st.builds(
    lambda absolute, path, query: (
        ("http://example.com" if absolute else "") + path + ("" if query is None else "?" + query)
    ),
    st.booleans(),
    PATH,
    st.none() | QUERY,
)
HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_characters="\x7f"),
    max_size=20,
).map(lambda text: text.strip(" "))
HEADERS = st.lists(st.tuples(TOKEN, HEADER_VALUE), max_size=6)
ADDRESS = st.none() | st.tuples(
    st.sampled_from(["127.0.0.1", "::1", "192.0.2.7", "2001:db8::1"]), st.integers(0, 65535)
)
STATE = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)


def parse_head(new_parser: type[RequestParser], raw: bytes) -> RequestHead:
    parser = new_parser(MAX_HEADER_SIZE)  # type: ignore[call-arg]
    parser.receive_data(raw)
    head = parser.next_event()
    assert isinstance(head, RequestHead), head
    return head


def request_bytes(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: example.com"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_plain(scope: dict[str, Any]) -> None:
    assert non_plain(scope) == []
    json.loads(json.dumps(scope, default=bytes.decode))  # every bytes value here is UTF-8


@pytest.mark.parametrize("new_parser", PARSERS, ids=lambda parser: parser.__name__)
@settings(max_examples=150, deadline=None)
@given(
    method=TOKEN,
    target=TARGET,
    headers=HEADERS,
    client=ADDRESS,
    server=ADDRESS,
    state=STATE,
    root_path=st.sampled_from(["", "/api"]),
)
def test_every_scope_built_from_a_parsed_request_is_plain_data(
    new_parser: type[RequestParser],
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    state: dict[str, Any],
    root_path: str,
) -> None:
    head = parse_head(new_parser, request_bytes(method, target, headers))
    common: dict[str, Any] = {
        "target": head.target,
        "headers": head.headers,
        "client": client,
        "server": server,
        "root_path": root_path,
        "state": state,
    }
    check_plain(
        http_scope(method=head.method, http_version=head.http_version, scheme="http", **common)
    )
    check_plain(websocket_scope(subprotocols=["chat", "v2"], scheme="ws", **common))
