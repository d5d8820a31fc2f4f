"""Sans-IO HTTP/1.1 request parsing: one small interface, two parsers behind it.

:class:`~trio_asgi._http11.HTTP11Connection` feeds socket bytes to a :class:`RequestParser`
and pulls events from it; it never sees which parser runs:

- :class:`H11Parser` wraps ``h11.Connection`` (the default and the reference).
- :class:`~trio_asgi._httptools_parser.HttptoolsParser` wraps ``httptools`` (llhttp, in C),
  installed with the ``trio-asgi[fast]`` extra.

Responses are not the parser's business: :mod:`trio_asgi._response` writes them, the same
way for both. Events, in the order a request gives them (RFC 9112 sections 2-7)::

    RequestHead            the request line and headers
    bytes                  a piece of de-chunked body (any number of them, never empty)
    END_OF_MESSAGE         the body is complete
    NEED_DATA              feed more bytes to go on
    PAUSED                 the request is complete and bytes of the next one are buffered:
                           nothing more until start_next_cycle() (or, after an upgrade
                           request, never: trailing_data is the new protocol's)
    CONNECTION_CLOSED      the client closed the connection between requests

A malformed request raises :class:`ParseError` with the status to answer it with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

import h11

if TYPE_CHECKING:
    from ._config import HTTPMode

__all__ = [
    "CONNECTION_CLOSED",
    "END_OF_MESSAGE",
    "NEED_DATA",
    "PAUSED",
    "H11Parser",
    "ParseError",
    "RequestHead",
    "RequestParser",
    "parser_factory",
]


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


END_OF_MESSAGE: Final = _Marker("END_OF_MESSAGE")
NEED_DATA: Final = _Marker("NEED_DATA")
PAUSED: Final = _Marker("PAUSED")
CONNECTION_CLOSED: Final = _Marker("CONNECTION_CLOSED")


class ParseError(Exception):
    """A request the server must refuse (RFC 9112): malformed, or over a parser limit.

    Attributes:
        error_status_hint (int): the status to answer with: 400 for malformed syntax,
            431 for a head over the size limit, 501 for an unknown transfer coding, 505
            for an unsupported HTTP version.
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


class RequestParser(Protocol):
    """What :class:`~trio_asgi._http11.HTTP11Connection` needs of a parser."""

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data`` from the client; ``b""`` means the client sent EOF."""

    def next_event(self) -> RequestHead | bytes | _Marker:
        """The next event (see the module docstring). Raises :class:`ParseError`."""

    def start_next_cycle(self) -> None:
        """The response to the complete request is written: parse the next request."""

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not yet parsed: a pipelined request, or after an upgrade
        request, the first bytes of the new protocol."""

    @property
    def request_complete(self) -> bool:
        """The current request has been received in full (END_OF_MESSAGE was given)."""

    @property
    def in_request(self) -> bool:
        """A request is partly or wholly received, or bytes of one are buffered."""

    @property
    def failed(self) -> bool:
        """The parser raised :class:`ParseError`; it will parse nothing more."""


class H11Parser:
    """:class:`RequestParser` over ``h11.Connection`` (server role), used for requests only.

    h11 tracks both sides of a connection, but responses are written by
    :mod:`trio_asgi._response`, so h11's server side never moves; each request cycle gets
    a fresh ``h11.Connection`` fed the bytes left over from the last one. An idle keep-alive
    connection holds none: it is made when the next request's first bytes arrive.

    Args:
        max_header_size: bytes a request head may have while it is still arriving (h11's
            ``max_incomplete_event_size``); past it, :class:`ParseError` with 431.
    """

    __slots__ = ("_conn", "_max_header_size")

    def __init__(self, max_header_size: int) -> None:
        self._max_header_size = max_header_size
        self._conn: h11.Connection | None = None  # made by the first receive_data()

    def receive_data(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            conn = self._conn = h11.Connection(
                h11.SERVER, max_incomplete_event_size=self._max_header_size
            )
        conn.receive_data(data)

    def next_event(self) -> RequestHead | bytes | _Marker:
        conn = self._conn
        if conn is None:
            return NEED_DATA
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ParseError(str(exc), exc.error_status_hint) from None
        event_type = type(event)
        if event_type is h11.Data:
            return bytes(event.data)  # type: ignore[union-attr]
        if event_type is h11.Request:
            return self._head(conn, event)  # type: ignore[arg-type]
        if event_type is h11.EndOfMessage:
            return END_OF_MESSAGE
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        return CONNECTION_CLOSED  # h11.ConnectionClosed: EOF between requests

    def _head(self, conn: h11.Connection, request: h11.Request) -> RequestHead:
        headers = list(request.headers)
        http_version = request.http_version
        keep_alive = http_version == b"1.1"
        if keep_alive:
            for name, value in headers:
                if name == b"connection" and b"close" in value.lower():
                    keep_alive = False
        return RequestHead(
            request.method,
            request.target,
            http_version,
            headers,
            keep_alive=keep_alive,
            expect_continue=conn.they_are_waiting_for_100_continue,
        )

    def start_next_cycle(self) -> None:
        if self._conn is None:
            return
        leftover, closed = self._conn.trailing_data
        self._conn = None
        if leftover:
            self.receive_data(leftover)
        if closed:
            self.receive_data(b"")

    @property
    def trailing_data(self) -> bytes:
        conn = self._conn
        return b"" if conn is None else conn.trailing_data[0]

    @property
    def request_complete(self) -> bool:
        conn = self._conn
        return conn is not None and conn.their_state in (h11.DONE, h11.MUST_CLOSE)

    @property
    def in_request(self) -> bool:
        conn = self._conn
        return conn is not None and (
            conn.their_state is not h11.IDLE or bool(conn.trailing_data[0])
        )

    @property
    def failed(self) -> bool:
        conn = self._conn
        return conn is not None and conn.their_state is h11.ERROR


def parser_factory(mode: HTTPMode) -> Callable[[int], RequestParser]:
    """The parser class for ``Config.http`` (``"h11"``, ``"httptools"``, or ``"auto"``),
    called with ``max_header_size`` per connection. A server looks it up once
    (``ServerContext.new_parser``), not per connection.

    Raises:
        ImportError: ``mode`` is ``"httptools"`` and httptools is not installed (``Config``
            checks this first, so a server never starts without its parser).
    """
    if mode == "h11":
        return H11Parser
    from ._httptools_parser import HAVE_HTTPTOOLS, HttptoolsParser

    if mode == "httptools" or HAVE_HTTPTOOLS:
        return HttptoolsParser
    return H11Parser
