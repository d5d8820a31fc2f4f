"""What a request parser hands on, whatever the HTTP version: the parsed head, or the error
that refuses the request. Pure values, no trio.

HTTP/1.1's parsers (``_h11/parsing.py``, ``_h11/httptools.py``) produce them today; an
HTTP/2 stream's decoded header block will produce the same :class:`RequestHead`, so the
exchange (``exchange.py``) and the scope builders never see which protocol carried it.
"""

from __future__ import annotations

__all__ = ["ParseError", "RequestHead"]


class ParseError(Exception):
    """A request the server must refuse (RFC 9112): malformed, or over a parser limit.

    Attributes:
        error_status_hint (int): the status to answer with: 400 for malformed syntax,
            431 for a head, a chunk line or a trailer section over the size limit, 501
            for an unknown transfer coding before a final ``chunked``.
    """

    def __init__(self, message: str, error_status_hint: int = 400) -> None:
        super().__init__(message)
        self.error_status_hint = error_status_hint


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
