"""Pure builders and checkers for ASGI HTTP values: no I/O, no trio, testable as functions.

What lives here:

- :func:`split_target` and :func:`decode_path` turn an RFC 9112 request-target into the
  scope's ``raw_path``, ``query_string`` and ``path``;
- :func:`http_scope` builds the ``http`` connection scope (ASGI HTTP spec 2.5,
  "HTTP Connection Scope");
- :func:`check_response_start` and :func:`check_response_body` validate what the app sends
  and return plain values, raising :class:`~trio_asgi.InvalidMessage` with a message that
  names the key and what it must be.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from ._errors import InvalidMessage

__all__ = [
    "ASGI_VERSION",
    "HTTP_SPEC_VERSION",
    "Address",
    "check_message_type",
    "check_request_head",
    "check_response_body",
    "check_response_start",
    "decode_path",
    "http_scope",
    "is_websocket_upgrade",
    "split_target",
    "websocket_scope",
]

#: The ASGI interface version we implement (ASGI spec, "Applications").
ASGI_VERSION: Final = "3.0"
#: The HTTP & WebSocket message format version (ASGI www spec). 2.4 made ``send()`` on a
#: closed connection raise ``OSError``; 2.5 only added WebSocket disconnect reasons.
HTTP_SPEC_VERSION: Final = "2.5"

#: ``(host, port)`` of a TCP peer, as ``scope["client"]`` and ``scope["server"]`` carry it.
Address = tuple[str, int]

_ABSOLUTE_FORM_PREFIXES: Final = (b"http://", b"https://")


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split an HTTP/1.1 request-target into ``(raw_path, query_string)``.

    Handles the origin form (``/a/b?x=1``, RFC 9112 section 3.2.1), the absolute form
    (``http://host/a?x=1``, section 3.2.2: the path is taken from it, an empty path becomes
    ``/``) and the asterisk form (``*``, section 3.2.4), which is returned unchanged.
    Neither part is decoded.

    Args:
        target: the request-target bytes exactly as received (h11's ``Request.target``).

    Returns:
        ``(raw_path, query_string)``, both bytes; ``query_string`` is ``b""`` when the
        target has no ``?``. A fragment (``#...``) cannot appear: h11 rejects it.
    """
    if target[:8].lower().startswith(_ABSOLUTE_FORM_PREFIXES):
        after_scheme = target.index(b"//") + 2
        slash = target.find(b"/", after_scheme)
        question = target.find(b"?", after_scheme)
        if slash == -1 or (question != -1 and question < slash):
            target = b"/" + (target[question:] if question != -1 else b"")
        else:
            target = target[slash:]
    raw_path, _, query_string = target.partition(b"?")
    return raw_path, query_string


def decode_path(raw_path: bytes) -> str:
    """Percent-decode ``raw_path`` and decode the bytes as UTF-8 into ``scope["path"]``.

    Invalid UTF-8 becomes U+FFFD (the replacement character), as in uvicorn and Hypercorn, so
    no request path can make scope building fail.

    >>> decode_path(b"/caf%C3%A9/a%20b")
    '/café/a b'
    """
    if b"%" not in raw_path:
        try:
            return raw_path.decode("ascii")
        except UnicodeDecodeError:
            return raw_path.decode("utf-8", "replace")
    return unquote_to_bytes(raw_path).decode("utf-8", "replace")


def http_scope(
    *,
    method: bytes,
    target: bytes,
    http_version: bytes,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: Address | None,
    server: Address | None,
    root_path: str,
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """Build the ``http`` connection scope for one request (ASGI HTTP spec 2.5).

    Args:
        method: request method bytes; the scope carries it uppercased, as the spec says.
        target: the request-target as received; see :func:`split_target`.
        http_version: ``b"1.0"``, ``b"1.1"``, or a higher 1.x served as ``"1.1"``.
        headers: ``(name, value)`` pairs with lower-cased names, in the order and with the
            duplicates they arrived with (h11 gives them so).
        scheme: ``"http"`` or ``"https"``.
        client: the peer's ``(host, port)``, or ``None`` when not on a socket.
        server: the local ``(host, port)`` the request arrived on, or ``None``.
        root_path: :attr:`Config.root_path <trio_asgi.Config.root_path>`. ``path`` is *not*
            prefixed with it (see docs/asgi.md for why).
        state: the lifespan state; the scope gets a shallow copy, so one request's new keys
            never reach another request.

    Returns:
        a new, mutable scope dict.
    """
    scope = _connection_scope("http", target, headers, scheme, client, server, root_path, state)
    scope["http_version"] = "1.0" if http_version == b"1.0" else "1.1"
    scope["method"] = method.decode("ascii").upper()
    return scope


def is_websocket_upgrade(method: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request asks to become a WebSocket (RFC 6455 section 4.1).

    True for a GET whose ``Upgrade`` header lists the ``websocket`` token. Whether the rest of
    the handshake is valid (``Connection: upgrade``, ``Sec-WebSocket-Key``, version 13) is
    wsproto's to check, so a malformed handshake gets a 400 that says what is missing
    rather than being served as plain HTTP.
    """
    if method != b"GET":
        return False
    for name, value in headers:
        if name == b"upgrade" and any(
            token.strip().lower() == b"websocket" for token in value.split(b",")
        ):
            return True
    return False


def websocket_scope(
    *,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    subprotocols: list[str],
    scheme: str,
    client: Address | None,
    server: Address | None,
    root_path: str,
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """Build the ``websocket`` connection scope (ASGI WebSocket spec 2.5).

    The arguments are those of :func:`http_scope`, less the method and version (a WebSocket
    handshake is always an HTTP/1.1 GET here), plus ``subprotocols``, the client's
    ``Sec-WebSocket-Protocol`` offers in order. ``scheme`` is ``"ws"`` or ``"wss"``. The
    scope advertises the ``websocket.http.response`` extension (the denial response).
    """
    scope = _connection_scope(
        "websocket", target, headers, scheme, client, server, root_path, state
    )
    scope["http_version"] = "1.1"
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _connection_scope(
    scope_type: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: Address | None,
    server: Address | None,
    root_path: str,
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """The keys the ``http`` and ``websocket`` scopes share (ASGI www spec 2.5)."""
    raw_path, query_string = split_target(target)
    return {
        "type": scope_type,
        "asgi": {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION},
        "scheme": scheme,
        "path": decode_path(raw_path),
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
        "state": dict(state),
    }


def check_message_type(message: Any) -> str:
    """The ``type`` of an ASGI message the app sent.

    Raises:
        InvalidMessage: ``message`` is not a mapping with a ``type`` key.
    """
    try:
        return str(message["type"])
    except (KeyError, TypeError):
        raise InvalidMessage(
            f"an ASGI message must be a dict with a 'type' key, not {message!r}"
        ) from None


def check_response_start(message: Mapping[str, Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Validate an ``http.response.start`` message and return ``(status, headers)``.

    Args:
        message: the dict the app passed to ``send()``, whose ``type`` has been checked.

    Returns:
        the status code and the headers as a new list of ``(name, value)`` byte pairs.

    Raises:
        InvalidMessage: ``status`` is missing or not an int from 200 to 599 (1xx responses
            are not sent with this message), or ``headers`` is not an iterable of
            ``[name, value]`` pairs of bytes.
    """
    kind = message.get("type", "http.response.start")  # or websocket.http.response.start
    status = message.get("status")
    if type(status) is not int or not 200 <= status <= 599:
        raise InvalidMessage(f"{kind!r} needs 'status', an int from 200 to 599, not {status!r}")
    raw_headers = message.get("headers", ())
    try:
        headers = [(name, value) for name, value in raw_headers]
    except (TypeError, ValueError):
        raise InvalidMessage(
            f"{kind!r} 'headers' must be an iterable of [name, value] pairs "
            f"of bytes, not {raw_headers!r}"
        ) from None
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise InvalidMessage(
                f"{kind!r} header names and values must be bytes, not [{name!r}, {value!r}]"
            )
    return status, headers


def check_response_body(message: Mapping[str, Any]) -> tuple[bytes, bool]:
    """Validate an ``http.response.body`` message and return ``(body, more_body)``.

    Raises:
        InvalidMessage: ``body`` is not bytes-like or ``more_body`` is not a bool.
    """
    body = message.get("body", b"")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidMessage(
            f"'http.response.body' 'body' must be bytes, not {type(body).__name__}"
        )
    more_body = message.get("more_body", False)
    if not isinstance(more_body, bool):
        raise InvalidMessage(f"'http.response.body' 'more_body' must be a bool, not {more_body!r}")
    return bytes(body), more_body


def check_request_head(
    http_version: bytes,
    target: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    *,
    max_body_size: int | None = None,
) -> tuple[int, str] | None:
    """What h11 accepts but the RFCs (or our limits) tell a server to refuse.

    - an HTTP major version other than 1: 505 (RFC 9110 section 15.6.6); a higher minor
      version (``HTTP/1.2``) is served as HTTP/1.1, as RFC 9110 section 2.5 asks;
    - a fragment (``#``) in the request-target, which no request form allows: 400
      (RFC 9112 section 3.2);
    - a control character in a header value (h11 lets ``\x1c``-``\x1e`` and ``\x7f``
      through; RFC 9110 section 5.5 allows none), or a raw ``\x85`` byte outside valid
      UTF-8, which Python's ``str.split()``/``strip()`` take for whitespace and which has
      been used to smuggle a WebSocket upgrade past a proxy: 400;
    - both ``Content-Length`` and ``Transfer-Encoding``, the classic request-smuggling
      signal: 400 (RFC 9112 section 6.3, "ought to be handled as an error");
    - a ``Content-Length`` over ``max_body_size``: 413 (RFC 9110 section 15.5.14).

    Returns:
        ``None`` for an acceptable request head, else the status and a one-line reason.
    """
    if not http_version.startswith(b"1."):
        return 505, f"HTTP version {http_version.decode('ascii', 'replace')} is not supported"
    if b"#" in target:
        return 400, "a request-target must not contain a fragment ('#')"
    length: bytes | None = None
    has_encoding = False
    for name, value in headers:
        if _FORBIDDEN_IN_VALUE.search(value) is not None or (
            b"\x85" in value and not _is_utf8(value)
        ):
            return 400, f"the {name.decode('ascii')} header has a control character"
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            has_encoding = True
    if length is not None and has_encoding:
        return 400, "Content-Length and Transfer-Encoding must not both be present"
    if length is not None and max_body_size is not None and int(length) > max_body_size:
        return 413, f"the request body is over {max_body_size} bytes"
    return None


# Control characters other than HTAB (RFC 9110 section 5.5 allows VCHAR, obs-text, SP, HTAB).
_FORBIDDEN_IN_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
