"""Pure builders and checkers for ASGI HTTP values: no I/O, no trio, testable as functions.

What lives here:

- :func:`split_target` and :func:`decode_path` turn an RFC 9112 request-target into the
  scope's ``raw_path``, ``query_string`` and ``path``;
- :func:`http_scope` builds the ``http`` connection scope (ASGI HTTP spec 2.5,
  "HTTP Connection Scope");
- :func:`websocket_scope` builds the ``websocket`` connection scope (ASGI WebSocket spec
  2.5, "Websocket Connection Scope").

What the app sends is checked in ``messages.py``; what HTTP/1.1 refuses in a request head,
in ``_h11/policy.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from .._types import Address
from .extensions import http_extensions

__all__ = [
    "ASGI_VERSION",
    "HTTP_SPEC_VERSION",
    "Address",
    "decode_path",
    "http_scope",
    "split_target",
    "websocket_scope",
]

#: The ASGI interface version we implement (ASGI spec, "Applications").
ASGI_VERSION: Final = "3.0"
#: The HTTP & WebSocket message format version (ASGI www spec). 2.4 made ``send()`` on a
#: closed connection raise ``OSError``; 2.5 only added WebSocket disconnect reasons.
HTTP_SPEC_VERSION: Final = "2.5"

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
    tls: Mapping[str, object] | None = None,
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
        tls: the connection's ASGI TLS extension (spec 0.2), or None on a plain connection;
            the scope's ``extensions["tls"]`` is a shallow copy of it.

    Returns:
        a new, mutable scope dict. Its ``extensions`` are a new dict each time
        (:func:`~trio_asgi._http.extensions.http_extensions`): ``http.response.pathsend``
        and ``http.response.zerocopysend`` always, ``http.response.trailers`` and
        ``http.response.early_hint`` for HTTP/1.1 requests.
    """
    scope = _connection_scope("http", target, headers, scheme, client, server, root_path, state)
    scope["http_version"] = "1.0" if http_version == b"1.0" else "1.1"
    scope["method"] = method.decode("ascii").upper()
    scope["extensions"] = extensions = http_extensions(http_version)
    if tls is not None:
        extensions["tls"] = dict(tls)
    return scope


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
    tls: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Build the ``websocket`` connection scope (ASGI WebSocket spec 2.5).

    The arguments are those of :func:`http_scope`, less the method and version (a WebSocket
    handshake is always an HTTP/1.1 GET here), plus ``subprotocols``, the client's
    ``Sec-WebSocket-Protocol`` offers in order. ``scheme`` is ``"ws"`` or ``"wss"``. The
    scope advertises the ``websocket.http.response`` extension (the denial response), and
    on a TLS connection ``tls`` (a shallow copy of ``tls``).
    """
    scope = _connection_scope(
        "websocket", target, headers, scheme, client, server, root_path, state
    )
    scope["http_version"] = "1.1"
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    if tls is not None:
        scope["extensions"]["tls"] = dict(tls)
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
