"""The fast request parser: :class:`~trio_asgi._h11.parsing.RequestParser` over httptools (llhttp).

h11 is the reference (:class:`~trio_asgi._h11.parsing.H11Parser`); this parser must be
indistinguishable from it through the interface, only faster. The rules it keeps:

- **Pull, like h11.** :meth:`HttptoolsParser.receive_data` only buffers bytes; each
  :meth:`~HttptoolsParser.next_event` call parses what the next event needs and no more.
  A pipelined request is not looked at before :meth:`~HttptoolsParser.start_next_cycle`, so
  its errors surface in its own turn, and ``trailing_data`` is exactly the bytes not yet
  parsed, as with h11 (the connection measures raw heads and applies backpressure with it).
- **Exact message boundaries.** llhttp reports no offsets, so it is only ever fed a whole
  head (up to its blank line, found with ``bytes.find``), never a body. A
  ``Content-Length`` body is sliced off the buffer; the bytes after the head of a chunked
  request go to a :class:`~trio_asgi._h11.parsing.ChunkedBody`, the strict decoder of
  :mod:`trio_asgi._h11.chunked` that :class:`~trio_asgi._h11.parsing.H11Parser` uses too, so a
  chunked body (its grammar, its limits, the bytes left for the next request) is the same
  with both parsers by construction. Each request gets a fresh ``HttpRequestParser``
  (cheaper than a header).
- **h11 decides every doubtful head.** When llhttp refuses a head, or h11 would refuse one
  llhttp accepts (a request line with extra spaces, no ``Host`` or two, a
  ``Transfer-Encoding`` other than exactly ``chunked``, a leading empty line, bare-LF line
  ends, a ``Content-Length`` over 20 digits), the request cycle is handed to an
  :class:`~trio_asgi._h11.parsing.H11Parser` fed the same bytes: the client gets h11's verdict,
  status for status (400, 431, 501; a ``HTTP/1.2``, an unknown method or a repeated equal
  ``Content-Length`` h11 accepts, and then serves). Valid requests never take that path.
- **h11's state machine.** After a request: more requests if keep-alive, an error for bytes
  after one that closes the connection (HTTP/1.0, ``Connection: close``), ``PAUSED`` for
  ever after a protocol switch proposal (an ``Upgrade`` header or ``CONNECT``), with
  ``trailing_data`` the new protocol's first bytes. EOF between requests is
  ``CONNECTION_CLOSED``; inside one it is a 400.
- **h11's limits.** A head still arriving past ``max_header_size`` bytes is a 431; a chunk
  line or a trailer section past it is a 431 however it arrives (the decoder's rule).

What still differs from h11: nothing the interface shows, as far as the differential tests
(tests/proto/test_parsing.py, tests/proto/test_chunked.py) reach. Inside a chunked body the
two cannot differ (one decoder); everywhere else llhttp only ever accepts a head that h11 accepts
too, or hands it to h11.
"""

from __future__ import annotations

from typing import Final

from .parsing import (
    BODY,
    CLOSED,
    CONNECTION_CLOSED,
    DONE,
    END_OF_MESSAGE,
    ERROR,
    IDLE,
    MUST_CLOSE,
    NEED_DATA,
    ChunkedBody,
    H11Parser,
    ParseError,
    RequestHead,
    RequestParser,
    _Marker,
    comma_tokens,
    event_after_message,
    state_after_message,
)

try:
    import httptools
except ImportError:  # pragma: no cover - the test environment installs the extra
    HAVE_HTTPTOOLS = False
else:
    HAVE_HTTPTOOLS = True

__all__ = ["HAVE_HTTPTOOLS", "HttptoolsParser"]

_CONTENT_LENGTH_MAX_DIGITS: Final = 20  # h11's bound (_headers.py)
_SPECIAL_HEADERS: Final = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
)


class _Callbacks:
    """What llhttp reports while it parses one request head: the callbacks of
    ``HttpRequestParser`` (it is fed nothing after the head).

    Header names are lowercased and values stripped of the optional whitespace llhttp
    leaves at their end (RFC 9112 section 5.1), so the headers are those h11 gives.
    """

    __slots__ = ("headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.strip(b" \t")))


class HttptoolsParser:
    """:class:`~trio_asgi._h11.parsing.RequestParser` over httptools, event for event like h11.

    Args:
        max_header_size: bytes a request head may have while it is still arriving; past
            it, :class:`~trio_asgi._h11.parsing.ParseError` with 431 (a complete head is
            measured by the connection, as with h11).

    Raises:
        ImportError: httptools is not installed.
    """

    __slots__ = (
        "_buffer",
        "_chunked",
        "_closed",
        "_delegate",
        "_keep_alive",
        "_length",
        "_max_header_size",
        "_remaining",
        "_search_from",
        "_state",
        "_switching",
    )

    def __init__(self, max_header_size: int) -> None:
        if not HAVE_HTTPTOOLS:  # pragma: no cover - Config refuses http="httptools" first
            raise ImportError("the httptools parser needs httptools: pip install httptools")
        self._max_header_size = max_header_size
        self._buffer = bytearray()  # received, not yet parsed: trailing_data
        self._closed = False  # the client sent EOF
        self._state = IDLE
        self._search_from = 0  # where to resume looking for the end of a partial head
        # The rest of this request cycle, when it is not ours: an H11Parser for a head h11
        # must judge, a ChunkedBody after the head of a chunked request.
        self._delegate: RequestParser | None = None
        # The request being read:
        self._chunked = False  # its head says Transfer-Encoding: chunked
        self._length = 0  # its Content-Length
        self._remaining = 0  # bytes of that still to come
        self._keep_alive = True  # another request may follow (h11's _keep_alive)
        self._switching = False  # Upgrade or CONNECT: h11's protocol switch proposal

    # -- bytes in ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        delegate = self._delegate
        if delegate is not None:
            delegate.receive_data(data)
        if data:
            if self._closed:
                raise RuntimeError("received close, then received more data?")
            if delegate is None:
                self._buffer += data
        else:
            self._closed = True

    # -- events out --------------------------------------------------------------------------

    def next_event(self) -> RequestHead | bytes | _Marker:
        if self._delegate is not None:
            return self._delegate.next_event()
        state = self._state
        try:
            if state == BODY:
                return self._body_event()
            if state == IDLE:
                return self._head_event()
            self._state, event = event_after_message(
                state, pending=bool(self._buffer), closed=self._closed
            )
        except ParseError:
            self._state = ERROR
            raise
        return event

    def _head_event(self) -> RequestHead | bytes | _Marker:
        buffer = self._buffer
        if not buffer:
            if self._closed:
                self._state = CLOSED
                return CONNECTION_CLOSED
            return NEED_DATA
        if not 0x41 <= buffer[0] <= 0x5A:
            # Every method llhttp knows starts with A-Z; anything else (a leading empty
            # line, garbage, a TLS record) is h11's to judge.
            return self._hand_to_h11()
        end = buffer.find(b"\n\r\n", self._search_from)
        if end == -1:
            if buffer.find(b"\n\n", self._search_from) != -1:
                return self._hand_to_h11()  # bare-LF line ends: h11 accepts them, llhttp not
            if len(buffer) > self._max_header_size:
                raise ParseError(f"the request head is over {self._max_header_size} bytes", 431)
            if self._closed:
                raise ParseError("peer unexpectedly closed connection")
            self._search_from = max(0, len(buffer) - 2)
            return NEED_DATA
        end += 3
        head = bytes(buffer[:end])
        callbacks = _Callbacks()
        llhttp = httptools.HttpRequestParser(callbacks)
        upgraded = False
        try:
            llhttp.feed_data(head)
        except httptools.HttpParserUpgrade:
            upgraded = True  # llhttp skips any body of an upgrade request: see below
        except httptools.HttpParserError:
            return self._hand_to_h11()
        request = self._request_head(head, callbacks, upgraded)
        if request is None:
            return self._hand_to_h11()
        del buffer[:end]
        self._search_from = 0
        self._state = BODY
        if self._chunked:
            self._delegate = ChunkedBody(
                buffer,
                closed=self._closed,
                keep_alive=self._keep_alive,
                switching=self._switching,
                max_line_size=self._max_header_size,
            )
            self._buffer = bytearray()
        return request

    def _request_head(
        self, head: bytes, callbacks: _Callbacks, upgraded: bool
    ) -> RequestHead | None:
        """The head llhttp parsed, checked for what h11 refuses and llhttp does not; None
        when h11 might judge it differently. Sets the body framing and the keep-alive and
        protocol-switch state, as h11 does on a ``Request`` event."""
        line_end = head.find(b"\r\n")
        space = head.find(b" ", 0, line_end)
        target = callbacks.url
        # llhttp validated the method, target and "HTTP/x.y" and allows more spaces between
        # them than h11's single SP: the lengths tell whether there are exactly two.
        if line_end != space + len(target) + 10:
            return None
        method = head[:space]
        http_version = head[line_end - 3 : line_end]
        headers = callbacks.headers
        hosts = 0
        length: bytes | None = None
        chunked = False
        head_close = False  # H11Parser's keep_alive test: "close" anywhere in Connection
        close = False  # h11's: a "close" token
        expect_continue = False
        switching = method == b"CONNECT"
        for name, value in headers:
            if name not in _SPECIAL_HEADERS:
                continue
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                if len(value) > _CONTENT_LENGTH_MAX_DIGITS:
                    return None
                length = value
            elif name == b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    return None  # h11 answers 501
                chunked = True
            elif name == b"connection":
                lowered = value.lower()
                if b"close" in lowered:
                    head_close = True
                    close = close or b"close" in comma_tokens(lowered)
            elif name == b"expect":
                lowered = value.lower()
                if b"100-continue" in lowered:
                    expect_continue = expect_continue or b"100-continue" in comma_tokens(lowered)
            elif any(comma_tokens(value)):  # upgrade: h11 ignores one with no token in it
                switching = True
        if hosts > 1 or (hosts == 0 and http_version == b"1.1"):
            return None  # h11's 400s, with h11's reasons
        if chunked and length is not None:
            return None  # llhttp refuses it; h11 gives the head for the connection's 400
        if chunked and (b"transfer-encoding", b"chunked") not in headers:
            # h11 gives the coding lowercased ("Chunked" -> "chunked").
            headers[:] = [
                (name, b"chunked" if name == b"transfer-encoding" else value)
                for name, value in headers
            ]
        self._chunked = chunked
        self._length = self._remaining = int(length) if length is not None else 0
        self._keep_alive = not close and http_version >= b"1.1"
        self._switching = switching
        return RequestHead(
            method,
            target,
            http_version,
            headers,
            keep_alive=http_version == b"1.1" and not head_close,
            expect_continue=expect_continue and http_version >= b"1.1",
        )

    def _body_event(self) -> bytes | _Marker:
        """The next event of a ``Content-Length`` body (h11's ContentLengthReader)."""
        remaining = self._remaining
        if remaining == 0:
            return self._end_of_message()
        buffer = self._buffer
        if buffer:
            if len(buffer) <= remaining:
                data = bytes(buffer)
                buffer.clear()
            else:
                data = bytes(buffer[:remaining])
                del buffer[:remaining]
            self._remaining = remaining - len(data)
            return data
        if self._closed:
            raise ParseError(
                "peer closed connection without sending complete message body "
                f"(received {self._length - remaining} bytes, expected {self._length})"
            )
        return NEED_DATA

    def _end_of_message(self) -> _Marker:
        """h11's transitions on ``EndOfMessage``: a switch proposal wins over keep-alive."""
        self._state = state_after_message(switching=self._switching, keep_alive=self._keep_alive)
        return END_OF_MESSAGE

    def _hand_to_h11(self) -> RequestHead | bytes | _Marker:
        """Let h11 parse this request cycle from its first byte: its verdict is the reference."""
        parser = H11Parser(self._max_header_size)
        buffer = self._buffer
        if buffer:
            parser.receive_data(bytes(buffer))
            buffer.clear()
        if self._closed:
            parser.receive_data(b"")
        self._delegate = parser
        self._search_from = 0
        return parser.next_event()

    # -- the next cycle ----------------------------------------------------------------------

    def start_next_cycle(self) -> None:
        delegate = self._delegate
        if delegate is not None:
            self._buffer = bytearray(delegate.trailing_data)
            self._delegate = None
        self._state = IDLE
        self._search_from = 0
        self._chunked = False
        self._switching = False
        self._keep_alive = True

    # -- state -------------------------------------------------------------------------------

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not parsed yet, exactly: a pipelined request, or after an
        upgrade request, the new protocol's first bytes."""
        if self._delegate is not None:
            return self._delegate.trailing_data
        return bytes(self._buffer)

    @property
    def request_complete(self) -> bool:
        if self._delegate is not None:
            return self._delegate.request_complete
        return self._state == DONE or self._state == MUST_CLOSE

    @property
    def in_request(self) -> bool:
        if self._delegate is not None:
            return self._delegate.in_request
        return self._state != IDLE or bool(self._buffer)

    @property
    def failed(self) -> bool:
        if self._delegate is not None:
            return self._delegate.failed
        return self._state == ERROR
