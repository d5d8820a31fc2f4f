"""A request's parsed head, as every HTTP version's reader hands it on (sans-IO, no trio).

:class:`RequestHead` is made by the HTTP/1.1 parsers (``trio_asgi._h11.parsing``, which
re-exports it) and read by the ASGI exchange and the WebSocket session.
"""

from __future__ import annotations

__all__ = ["RequestHead"]


class RequestHead:
    """A parsed request line and header section (RFC 9112 sections 3 and 5).

    Attributes:
        method (bytes): e.g. ``b"GET"``, as received (methods are case-sensitive).
        target (bytes): the request-target as received, e.g. ``b"/a%20b?x=1"``.
        http_version (bytes): ``b"1.1"`` or ``b"1.0"``.
        headers (list[tuple[bytes, bytes]]): ``(name, value)`` pairs in arrival order, names
            lowercased, values without surrounding whitespace.
        keep_alive (bool): the client allows another request after this one (HTTP/1.1
            without ``Connection: close``; RFC 9112 section 9.3).
        expect_continue (bool): the client sent ``Expect: 100-continue`` and waits for
            ``100 Continue`` before its body (RFC 9110 section 10.1.1).
    """

    __slots__ = ("expect_continue", "headers", "http_version", "keep_alive", "method", "target")

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
        *,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def __repr__(self) -> str:
        return f"RequestHead({self.method!r}, {self.target!r}, {self.http_version!r})"
