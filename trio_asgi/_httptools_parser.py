"""The fast request parser: :class:`~trio_asgi._parsing.RequestParser` over httptools (llhttp).

h11 is the reference (:class:`~trio_asgi._parsing.H11Parser`); this parser must be
indistinguishable from it through the interface, only faster. The rules it keeps:

- **Pull, like h11.** :meth:`HttptoolsParser.receive_data` only buffers bytes; each
  :meth:`~HttptoolsParser.next_event` call parses what the next event needs and no more.
  A pipelined request is not looked at before :meth:`~HttptoolsParser.start_next_cycle`, so
  its errors surface in its own turn, and ``trailing_data`` is exactly the bytes not yet
  parsed, as with h11 (the connection measures raw heads and applies backpressure with it).
- **Exact message boundaries.** llhttp reports no offsets, so it is only ever fed bytes that
  end where an event may end: a whole head (up to its blank line, found with
  ``bytes.find``), or a piece of chunked body that stops at the first ``\\r\\n\\r\\n``, the
  only place a chunked body can end. A ``Content-Length`` body is sliced off the buffer
  without llhttp. Each request gets a fresh ``HttpRequestParser`` (cheaper than a header).
- **h11 decides every doubtful head.** When llhttp refuses a head, or h11 would refuse one
  llhttp accepts (a request line with extra spaces, no ``Host`` or two, a
  ``Transfer-Encoding`` other than exactly ``chunked``, a leading empty line, bare-LF line
  ends, a ``Content-Length`` over 20 digits), the request cycle is handed to an
  :class:`~trio_asgi._parsing.H11Parser` fed the same bytes: the client gets h11's verdict,
  status for status (400, 431, 501; a ``HTTP/1.2``, an unknown method or a repeated equal
  ``Content-Length`` h11 accepts, and then serves). Valid requests never take that path.
- **h11's state machine.** After a request: more requests if keep-alive, an error for bytes
  after one that closes the connection (HTTP/1.0, ``Connection: close``), ``PAUSED`` for
  ever after a protocol switch proposal (an ``Upgrade`` header or ``CONNECT``), with
  ``trailing_data`` the new protocol's first bytes. EOF between requests is
  ``CONNECTION_CLOSED``; inside one it is a 400.
- **h11's limits.** A head, a chunk-size line or a trailer section still arriving past
  ``max_header_size`` bytes is a 431 (llhttp alone would stream the last two without end).

What still differs from h11, all inside a chunked body (a body, unlike a head, cannot be
handed to h11 half-way), and no llhttp leniency is enabled to hide it (each is a
request-smuggling risk):

- llhttp refuses whitespace after a chunk size (``3 \\r\\n``), malformed chunk extensions
  (``3;\\r\\n``, ``3;a b\\r\\n``), and trailer fields h11 lets through (obs-fold, control
  characters, ``Content-Length`` or ``Transfer-Encoding`` in the trailers): 400 mid-body,
  where h11 completes the request (or, for a trailer ``Transfer-Encoding`` other than
  ``chunked``, answers 501);
- llhttp takes a chunk size of more than 20 hex digits with leading zeros, which h11
  refuses with a 400.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from ._parsing import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    H11Parser,
    ParseError,
    RequestHead,
    _Marker,
)

try:
    import httptools
except ImportError:  # pragma: no cover - the test environment installs the extra
    HAVE_HTTPTOOLS = False
else:
    HAVE_HTTPTOOLS = True

__all__ = ["HAVE_HTTPTOOLS", "HttptoolsParser"]

# h11's client states (h11/_state.py), those a request parser can be in.
_IDLE: Final = 0  # waiting for a request head
_BODY: Final = 1  # the head was given; its body is being read
_DONE: Final = 2  # the request is complete, keep-alive: the next one waits for a new cycle
_MUST_CLOSE: Final = 3  # the request is complete and the connection must close after it
_SWITCHING: Final = 4  # the request proposed a protocol switch: HTTP is over on this stream
_CLOSED: Final = 5  # the client closed the connection between requests
_ERROR: Final = 6  # a ParseError was raised: nothing more is parsed

_CONTENT_LENGTH_MAX_DIGITS: Final = 20  # h11's bound (_headers.py)
_SPECIAL_HEADERS: Final = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
)


def _tokens(value: bytes) -> list[bytes]:
    """The items of a comma-separated header value, as h11's ``get_comma_header`` splits it."""
    return [token.strip() for token in value.split(b",")]


class _Callbacks:
    """What llhttp reports while it parses one request: the callbacks of ``HttpRequestParser``.

    Header names are lowercased and values stripped of the optional whitespace llhttp
    leaves at their end (RFC 9112 section 5.1), so the headers are those h11 gives. The
    fields of a chunked body's trailer section are dropped, as h11 drops them. Body pieces
    of one chunk are joined until the connection takes them, so a chunk is one event.
    """

    __slots__ = ("body", "complete", "headers", "in_head", "joinable", "progress", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = True
        self.body: list[bytes] = []  # body pieces since the connection last took them
        self.joinable = False  # the last piece belongs to a chunk still being read
        self.progress = False  # body or a chunk end came in the last feed
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:
            self.headers.append((name.lower(), value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        if self.joinable:
            self.body[-1] += body
        else:
            self.body.append(body)
            self.joinable = True
        self.progress = True

    def on_chunk_complete(self) -> None:
        self.joinable = False
        self.progress = True

    def on_message_complete(self) -> None:
        self.complete = True


class HttptoolsParser:
    """:class:`~trio_asgi._parsing.RequestParser` over httptools, event for event like h11.

    Args:
        max_header_size: bytes a request head may have while it is still arriving; past
            it, :class:`~trio_asgi._parsing.ParseError` with 431 (a complete head is
            measured by the connection, as with h11).

    Raises:
        ImportError: httptools is not installed.
    """

    __slots__ = (
        "_buffer",
        "_callbacks",
        "_chunked",
        "_closed",
        "_h11",
        "_keep_alive",
        "_length",
        "_llhttp",
        "_max_header_size",
        "_pending",
        "_remaining",
        "_search_from",
        "_stalled",
        "_state",
        "_switching",
        "_tail",
    )

    def __init__(self, max_header_size: int) -> None:
        if not HAVE_HTTPTOOLS:  # pragma: no cover - Config refuses http="httptools" first
            raise ImportError("the httptools parser needs httptools: pip install 'trio-asgi[fast]'")
        self._max_header_size = max_header_size
        self._buffer = bytearray()  # received, not yet parsed: trailing_data
        self._closed = False  # the client sent EOF
        self._state = _IDLE
        self._search_from = 0  # where to resume looking for the end of a partial head
        self._h11: H11Parser | None = None  # set while h11 handles this request cycle
        # The request being read:
        self._llhttp: httptools.HttpRequestParser | None = None  # only for a chunked body
        # Made for a chunked body only: an idle keep-alive connection holds neither.
        self._callbacks: _Callbacks | None = None
        self._chunked = False
        self._length = 0  # its Content-Length
        self._remaining = 0  # bytes of that still to come
        self._pending: deque[bytes | _Marker | ParseError] | None = None  # chunked body events
        self._tail = b""  # the last bytes of chunked body fed to llhttp (at most 3)
        self._stalled = 0  # chunked body bytes fed since llhttp last gave body or a chunk end
        self._keep_alive = True  # another request may follow (h11's _keep_alive)
        self._switching = False  # Upgrade or CONNECT: h11's protocol switch proposal

    # -- bytes in ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._h11 is not None:
            self._h11.receive_data(data)
        if data:
            if self._closed:
                raise RuntimeError("received close, then received more data?")
            if self._h11 is None:
                self._buffer += data
        else:
            self._closed = True

    # -- events out --------------------------------------------------------------------------

    def next_event(self) -> RequestHead | bytes | _Marker:
        if self._h11 is not None:
            return self._h11.next_event()
        state = self._state
        try:
            if state == _BODY:
                return self._chunk_event() if self._chunked else self._body_event()
            if state == _IDLE:
                return self._head_event()
            if state == _SWITCHING:
                return PAUSED
            if state == _ERROR:
                raise ParseError("Can't receive data when peer state is ERROR")
            if self._buffer:
                if state == _DONE:
                    return PAUSED
                raise ParseError("Got data when expecting EOF")
        except ParseError:
            self._state = _ERROR
            raise
        if self._closed:
            self._state = _CLOSED
            return CONNECTION_CLOSED
        return NEED_DATA

    def _head_event(self) -> RequestHead | bytes | _Marker:
        buffer = self._buffer
        if not buffer:
            if self._closed:
                self._state = _CLOSED
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
        self._state = _BODY
        if self._chunked:
            self._llhttp = llhttp
            self._callbacks = callbacks
            self._tail = b""
            self._stalled = 0
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
                    close = close or b"close" in _tokens(lowered)
            elif name == b"expect":
                lowered = value.lower()
                if b"100-continue" in lowered:
                    expect_continue = expect_continue or b"100-continue" in _tokens(lowered)
            elif any(_tokens(value)):  # upgrade: h11 ignores one with no token in it
                switching = True
        if hosts > 1 or (hosts == 0 and http_version == b"1.1"):
            return None  # h11's 400s, with h11's reasons
        if chunked and (length is not None or upgraded):
            return None  # llhttp refuses the first; skipped the body of the second
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

    def _chunk_event(self) -> bytes | _Marker:
        """The next event of a chunked body: llhttp de-chunks, fed up to possible ends.

        Everything buffered is fed at once, so each chunk's buffered data is one event, as
        h11 gives it.
        """
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        if not pending:
            buffer = self._buffer
            end: ParseError | _Marker | None = None
            while buffer and end is None:
                end = self._feed_chunked(buffer)
            callbacks = self._callbacks
            assert callbacks is not None  # _head_event sets it for a chunked body
            if callbacks.body:
                pending.extend(callbacks.body)
                callbacks.body = []
                callbacks.joinable = False
            if end is not None:
                pending.append(end)
        if pending:
            event = pending.popleft()
            if isinstance(event, bytes):
                return event
            if isinstance(event, ParseError):
                raise event
            return self._end_of_message()
        if self._closed:
            raise ParseError(
                "peer closed connection without sending complete message body: "
                "incomplete chunked read"
            )
        return NEED_DATA

    def _feed_chunked(self, buffer: bytearray) -> ParseError | _Marker | None:
        """Feed llhttp the buffered body up to and including the next ``\\r\\n\\r\\n``.

        A chunked body ends with one (the last chunk's line, any trailer fields, an empty
        line), so llhttp can only finish the message at the end of what it is fed, and the
        bytes after it stay in the buffer for the next request.

        Returns:
            ``END_OF_MESSAGE`` if the body is complete, the ``ParseError`` that ends it, or
            None if more is to come.
        """
        tail = self._tail
        cut = -1
        if tail:  # an end that straddles the previous piece and this one
            probe = tail + bytes(buffer[:3])
            found = probe.find(b"\r\n\r\n")
            if found != -1:
                cut = found + 4 - len(tail)
        if cut == -1:
            found = buffer.find(b"\r\n\r\n")
            cut = found + 4 if found != -1 else len(buffer)
        if cut >= len(buffer):
            piece = bytes(buffer)
            buffer.clear()
        else:
            piece = bytes(buffer[:cut])
            del buffer[:cut]
        self._tail = (tail + piece)[-3:] if len(piece) < 3 else piece[-3:]
        callbacks = self._callbacks
        llhttp = self._llhttp
        if llhttp is None or callbacks is None:  # pragma: no cover - _head_event sets both
            raise RuntimeError("no llhttp parser for a chunked body")
        callbacks.progress = False
        try:
            llhttp.feed_data(piece)
        except httptools.HttpParserError as exc:
            return ParseError(f"invalid chunked body: {exc}")
        if callbacks.complete:
            return END_OF_MESSAGE
        if callbacks.progress:
            self._stalled = 0
            return None
        # No body byte and no chunk end: a chunk-size line or the trailer section is still
        # arriving. h11 buffers those whole and answers 431 past max_header_size; llhttp
        # would stream them without end (and httptools joins a field's pieces in memory).
        self._stalled += len(piece)
        if self._stalled > self._max_header_size:
            return ParseError(f"a chunk line or trailer is over {self._max_header_size} bytes", 431)
        return None

    def _end_of_message(self) -> _Marker:
        """h11's transitions on ``EndOfMessage``: a switch proposal wins over keep-alive."""
        if self._switching:
            self._state = _SWITCHING
        elif self._keep_alive:
            self._state = _DONE
        else:
            self._state = _MUST_CLOSE
        self._llhttp = None
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
        self._h11 = parser
        self._search_from = 0
        return parser.next_event()

    # -- the next cycle ----------------------------------------------------------------------

    def start_next_cycle(self) -> None:
        h11_parser = self._h11
        if h11_parser is not None:
            self._buffer = bytearray(h11_parser.trailing_data)
            self._h11 = None
        self._state = _IDLE
        self._search_from = 0
        self._llhttp = None
        self._callbacks = None
        self._pending = None
        self._chunked = False
        self._switching = False
        self._keep_alive = True

    # -- state -------------------------------------------------------------------------------

    @property
    def trailing_data(self) -> bytes:
        """Bytes received and not parsed yet, exactly: a pipelined request, or after an
        upgrade request, the new protocol's first bytes."""
        if self._h11 is not None:
            return self._h11.trailing_data
        return bytes(self._buffer)

    @property
    def request_complete(self) -> bool:
        if self._h11 is not None:
            return self._h11.request_complete
        return self._state == _DONE or self._state == _MUST_CLOSE

    @property
    def in_request(self) -> bool:
        if self._h11 is not None:
            return self._h11.in_request
        return self._state != _IDLE or bool(self._buffer)

    @property
    def failed(self) -> bool:
        if self._h11 is not None:
            return self._h11.failed
        return self._state == _ERROR
