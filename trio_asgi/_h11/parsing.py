"""Sans-IO HTTP/1.1 request parsing: one small interface, two parsers behind it.

:class:`~trio_asgi._h11.connection.HTTP11Connection` feeds socket bytes to a :class:`RequestParser`
and pulls events from it; it never sees which parser runs:

- :class:`H11Parser` wraps ``h11.Connection`` (the default and the reference).
- :class:`~trio_asgi._h11.httptools.HttptoolsParser` wraps ``httptools`` (llhttp, in C),
  installed with the ``fast`` extra (``pip install httptools``).

Responses are not the parser's business: :mod:`trio_asgi._h11.response` writes them, the same
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

Of a chunked request, either parser parses only the head: the bytes after it go to one
:class:`ChunkedBody` (its grammar and limits are in :mod:`trio_asgi._h11.chunked`), so a
chunked body gets the same answer, byte for byte, with either parser. A
``Transfer-Encoding`` whose final coding is not ``chunked`` (``chunked, identity``,
``xchunked``, ``gzip``), or that applies ``chunked`` twice, is a 400 (RFC 9112 section
6.3: the body length cannot be known); one that ends in ``chunked`` after a coding the
server does not implement (``gzip, chunked``) is a 501 (RFC 9112 section 6.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Protocol

import h11

from .._http.request import ParseError, RequestHead
from .chunked import ChunkedBodyError, ChunkedDecoder

__all__ = [
    "CONNECTION_CLOSED",
    "END_OF_MESSAGE",
    "NEED_DATA",
    "PAUSED",
    "ChunkedBody",
    "H11Parser",
    "ParseError",
    "RequestHead",
    "RequestParser",
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


class RequestParser(Protocol):
    """What :class:`~trio_asgi._h11.connection.HTTP11Connection` needs of a parser."""

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
    :mod:`trio_asgi._h11.response`, so h11's server side never moves; each request cycle gets
    a fresh ``h11.Connection`` fed the bytes left over from the last one. An idle keep-alive
    connection holds none: it is made when the next request's first bytes arrive. h11
    parses the head; the body of a chunked request is a :class:`ChunkedBody`'s.

    Args:
        max_header_size: bytes a request head may have while it is still arriving (h11's
            ``max_incomplete_event_size``); past it, :class:`ParseError` with 431. Also
            the limit on a chunk line and on a trailer section, however they arrive.
    """

    __slots__ = ("_body", "_conn", "_head_data", "_max_header_size")

    def __init__(self, max_header_size: int) -> None:
        self._max_header_size = max_header_size
        self._conn: h11.Connection | None = None  # made by the first receive_data()
        # What h11 got before its head event, for a 501; None while there is none (no list
        # is held by an idle keep-alive connection).
        self._head_data: list[bytes] | None = None
        self._body: ChunkedBody | None = None  # after the head of a chunked request

    def receive_data(self, data: bytes) -> None:
        body = self._body
        if body is not None:
            body.receive_data(data)
            return
        conn = self._conn
        if conn is None:
            conn = self._conn = h11.Connection(
                h11.SERVER, max_incomplete_event_size=self._max_header_size
            )
            self._head_data = None
        conn.receive_data(data)
        if conn.their_state is h11.IDLE:
            if self._head_data is None:
                self._head_data = [data]
            else:
                self._head_data.append(data)

    def next_event(self) -> RequestHead | bytes | _Marker:
        body = self._body
        if body is not None:
            return body.next_event()
        conn = self._conn
        if conn is None:
            return NEED_DATA
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if status == 501:  # h11's answer to any Transfer-Encoding but "chunked"
                raw = b"".join(self._head_data or ())
                status = transfer_coding_status(_raw_transfer_codings(raw))
            raise ParseError(str(exc), status) from None
        event_type = type(event)
        if event_type is h11.Data:
            return bytes(event.data)  # type: ignore[union-attr]
        if event_type is h11.Request:
            self._head_data = None
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
        chunked = False
        close = False  # h11's own keep-alive test: a "close" token
        switching = request.method == b"CONNECT"
        for name, value in headers:
            if name == b"connection":
                lowered = value.lower()
                if b"close" in lowered:
                    keep_alive = False
                    close = close or b"close" in comma_tokens(lowered)
            elif name == b"transfer-encoding":
                chunked = True  # h11 refuses every value but "chunked"
            elif name == b"upgrade" and any(comma_tokens(value)):
                switching = True
        head = RequestHead(
            request.method,
            request.target,
            http_version,
            headers,
            keep_alive=keep_alive,
            expect_continue=conn.they_are_waiting_for_100_continue,
        )
        if chunked:
            leftover, closed = conn.trailing_data
            self._conn = None
            self._body = ChunkedBody(
                leftover,
                closed=closed,
                keep_alive=not close and http_version >= b"1.1",
                switching=switching,
                max_line_size=self._max_header_size,
            )
        return head

    def start_next_cycle(self) -> None:
        body = self._body
        if body is not None:
            leftover, closed = body.trailing_data, body.closed
            self._body = None
        elif self._conn is not None:
            leftover, closed = self._conn.trailing_data
            self._conn = None
        else:
            return
        if leftover:
            self.receive_data(leftover)
        if closed:
            self.receive_data(b"")

    @property
    def trailing_data(self) -> bytes:
        if self._body is not None:
            return self._body.trailing_data
        conn = self._conn
        return b"" if conn is None else conn.trailing_data[0]

    @property
    def request_complete(self) -> bool:
        if self._body is not None:
            return self._body.request_complete
        conn = self._conn
        return conn is not None and conn.their_state in (h11.DONE, h11.MUST_CLOSE)

    @property
    def in_request(self) -> bool:
        if self._body is not None:
            return self._body.in_request
        conn = self._conn
        return conn is not None and (
            conn.their_state is not h11.IDLE or bool(conn.trailing_data[0])
        )

    @property
    def failed(self) -> bool:
        if self._body is not None:
            return self._body.failed
        conn = self._conn
        return conn is not None and conn.their_state is h11.ERROR


# h11's client states (h11/_state.py), those a request parser can be in; the parsers that
# keep their own state (ChunkedBody, HttptoolsParser) use these, and the two functions below.
IDLE: Final = 0  # waiting for a request head
BODY: Final = 1  # the head was given; its body is being read
DONE: Final = 2  # complete, keep-alive: the next request waits for a new cycle
MUST_CLOSE: Final = 3  # complete, and the connection must close after it
SWITCHING: Final = 4  # complete, and it proposed a protocol switch: HTTP is over
CLOSED: Final = 5  # the client closed the connection after the request
ERROR: Final = 6  # a ParseError was raised: nothing more is parsed


def state_after_message(*, switching: bool, keep_alive: bool) -> int:
    """h11's transition on ``EndOfMessage``: a switch proposal wins over keep-alive."""
    if switching:
        return SWITCHING
    return DONE if keep_alive else MUST_CLOSE


def event_after_message(state: int, *, pending: bool, closed: bool) -> tuple[int, _Marker]:
    """The next event, and the new state, of a complete request (``DONE``, ``MUST_CLOSE``,
    ``SWITCHING``, or ``CLOSED``/``ERROR`` after them), as h11 gives them.

    Args:
        pending: bytes after the request are buffered.
        closed: the client has sent EOF.

    Raises:
        ParseError: bytes after a request that closes the connection, or any call in
            ``ERROR``; the caller's state is then ``ERROR``.
    """
    if state == SWITCHING:
        return state, PAUSED
    if state == ERROR:
        raise ParseError("Can't receive data when peer state is ERROR")
    if pending:
        if state == DONE:
            return state, PAUSED
        raise ParseError("Got data when expecting EOF")
    if closed:
        return CLOSED, CONNECTION_CLOSED
    return state, NEED_DATA


class ChunkedBody:
    """The rest of a request cycle after the head of a chunked request, for both parsers.

    The body goes through a :class:`~trio_asgi._h11.chunked.ChunkedDecoder`; after its end the
    state is what h11's would be after ``EndOfMessage``: ``PAUSED`` while bytes of another
    request wait (keep-alive), a 400 for bytes after a request that closes the connection,
    ``PAUSED`` for ever after a protocol switch proposal (``trailing_data`` is then the new
    protocol's), ``CONNECTION_CLOSED`` at EOF. EOF before the body's end is a 400.

    Args:
        buffer: the bytes received after the head.
        closed: the client has sent EOF already.
        keep_alive: another request may follow (HTTP/1.1, no ``close`` token in
            ``Connection``).
        switching: the request proposed a protocol switch (``Upgrade``, or ``CONNECT``).
        max_line_size: bytes a chunk line and the trailer section may have (431 past it).
    """

    __slots__ = ("_buffer", "_decoder", "_keep_alive", "_state", "_switching", "closed")

    def __init__(
        self,
        buffer: bytes | bytearray,
        *,
        closed: bool,
        keep_alive: bool,
        switching: bool,
        max_line_size: int,
    ) -> None:
        self._buffer = bytearray(buffer)
        self.closed = closed  # the client sent EOF
        self._keep_alive = keep_alive
        self._switching = switching
        self._state = BODY
        self._decoder = ChunkedDecoder(max_line_size)

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; ``b""`` is the client's EOF. Raises RuntimeError for bytes
        after an EOF (a bug of the caller)."""
        if not data:
            self.closed = True
        elif self.closed:
            raise RuntimeError("received close, then received more data?")
        else:
            self._buffer += data

    def next_event(self) -> bytes | _Marker:
        """Body bytes, ``END_OF_MESSAGE``, then the states after it (see the class
        docstring). Raises :class:`ParseError` (400, or 431 for a line over the limit)."""
        state = self._state
        try:
            if state == BODY:
                return self._body_event()
            self._state, event = event_after_message(
                state, pending=bool(self._buffer), closed=self.closed
            )
        except ParseError:
            self._state = ERROR
            raise
        return event

    def _body_event(self) -> bytes | _Marker:
        try:
            event = self._decoder.next_event(self._buffer)
        except ChunkedBodyError as exc:
            raise ParseError(f"invalid chunked body: {exc}", exc.error_status_hint) from None
        if event is True:
            self._state = state_after_message(
                switching=self._switching, keep_alive=self._keep_alive
            )
            return END_OF_MESSAGE
        if event is False:
            if self.closed:
                raise ParseError(
                    "peer closed connection without sending complete message body: "
                    "incomplete chunked read"
                )
            return NEED_DATA
        return event

    def start_next_cycle(self) -> None:
        """Nothing to do: the parser that made this one starts the next cycle from
        ``trailing_data`` and ``closed``."""

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not parsed: the next request's, or the new protocol's."""
        return bytes(self._buffer)

    @property
    def in_request(self) -> bool:
        return True  # a head was given: the cycle is not idle, as in h11

    @property
    def request_complete(self) -> bool:
        return self._state == DONE or self._state == MUST_CLOSE

    @property
    def failed(self) -> bool:
        return self._state == ERROR


def comma_tokens(value: bytes) -> list[bytes]:
    """The items of a comma-separated header value, stripped, as h11's
    ``get_comma_header`` splits it (RFC 9110 section 5.6.1), empty ones included."""
    return [token.strip() for token in value.split(b",")]


def transfer_coding_status(values: Iterable[bytes]) -> int:
    """The status for a request whose ``Transfer-Encoding`` values are not just ``chunked``.

    Returns:
        400 if the final coding is not ``chunked`` or ``chunked`` appears more than once
        (RFC 9112 section 6.3: the body's length cannot be determined), else 501 (a coding
        the server does not implement before the final ``chunked``; RFC 9112 section 6.1).
    """
    codings = [token.lower() for value in values for token in comma_tokens(value) if token]
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        return 400
    return 501


_LINE_END: Final = re.compile(rb"\r?\n")


def _raw_transfer_codings(raw: bytes) -> list[bytes]:
    """The ``Transfer-Encoding`` values in a raw head h11 refused with 501. A folded line
    (obs-fold, which h11 unfolds) gives ``[b""]``: no final ``chunked``, a 400."""
    values = []
    for line in _LINE_END.split(raw)[1:]:
        if not line:
            break
        if line[0] in b" \t":
            return [b""]
        name, _, value = line.partition(b":")
        if name.lower() == b"transfer-encoding":
            values.append(value)
    return values
