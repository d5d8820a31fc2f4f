"""HTTP/1.1 request-head policy: what the parsers accept but a server refuses, and whether a
request asks to become a WebSocket. Pure functions, no trio.

The parsers (h11, httptools) keep RFC 9112's syntax; :func:`check_request_head` adds the
rules of RFC 9110/9112 that they leave to the server, and our size limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "check_raw_head",
    "check_request_head",
    "has_fold",
    "is_websocket_upgrade",
    "may_hold_fold",
]


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


_FOLD_STARTS: Final = (b" ", b"\t")  # a read starting with one may continue a folded line


def has_fold(data: bytes) -> bool:
    """Whether ``data`` holds a line that starts with SP or HTAB: obs-fold in a head (RFC
    9112 section 5.2)."""
    return b"\n " in data or b"\n\t" in data


def may_hold_fold(data: bytes) -> bool:
    """Whether a read may hold or continue an obs-fold line: one that holds a fold, or
    starts with SP/HTAB (continuing a line whose LF ended the previous read). The answer
    must not depend on where TCP split the bytes."""
    return has_fold(data) or data[:1] in _FOLD_STARTS


def check_raw_head(raw_head: bytes, max_header_size: int) -> tuple[int, str] | None:
    """What a parsed head hides: its real size and obsolete line folding.

    The parsers strip whitespace around values and h11 unfolds obs-fold lines, so these
    are checked on the raw bytes: a head over ``max_header_size`` bytes gets 431 however it
    arrived, and a folded header line gets 400 (RFC 9112 section 5.2 allows that; a folded
    ``Transfer-Encoding`` is a request-smuggling vector).

    Returns:
        ``None`` for an acceptable head, else the status and a one-line reason.
    """
    if len(raw_head) > max_header_size:
        return 431, f"the request head is over {max_header_size} bytes"
    if has_fold(raw_head):
        return 400, "obsolete line folding (obs-fold) is not accepted"
    return None
