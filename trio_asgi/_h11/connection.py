"""HTTP/1.1: one connection's nursery, its reader task and its app tasks.

:func:`~trio_asgi.serve` spawns :meth:`HTTP11Connection.run` into its connections nursery,
once per accepted socket, as the connection task. The tree below it::

    HTTP11Connection.run()            connection task "trio-asgi connection": the connection
    │                                 nursery; the stream is closed when it exits
    ├── reader task (_read_loop)      "trio-asgi reader": socket bytes -> parser -> request
    │                                 events, inside the read cancel scope; its deadline is
    │                                 the keep-alive timeout while idle, the head timeout
    │                                 while a head arrives, the linger timeout while closing
    ├── app task (_run_app)           "trio-asgi app": app(scope, receive, send) for one
    │                                 request, inside that request's cancel scope; once the
    │                                 client is gone its deadline becomes now + disconnect_timeout
    └── closing task                  "trio-asgi closing": short-lived, only when the FIN cannot
                                      go out synchronously, or a refused pipelined request
                                      needs its 4xx

How the parts divide the work:

- The parser (:mod:`trio_asgi._h11.parsing`: h11, or httptools with ``Config.http``) owns the
  request side of the protocol; :class:`~trio_asgi._h11.response.ResponseWriter` serialises
  responses; this module moves bytes and events and keeps the ASGI rules. Parser and writer
  calls are synchronous, so the two tasks never interleave inside one.
- Only the reader reads the socket. It feeds the parser and hands events to the current
  :class:`~trio_asgi._http.exchange.RequestCycle` synchronously. It stops reading
  (backpressure) while
  ``Config.body_buffer_size`` bytes of body wait for the app, or as many bytes of pipelined
  requests wait behind the current one.
- The app task spawns from the reader on each request head. When it completes its response
  it starts the next request cycle itself (:meth:`HTTP11Connection.response_done`,
  synchronous so no cancellation can cut it short) and handles any pipelined request
  already buffered, so responses go out in request order with no extra task hop.
- On a plain TCP socket the reader waits with ``trio.lowlevel.wait_readable`` and reads the
  descriptor, and :meth:`HTTP11Connection.write` writes it directly, taking the write lock
  only when it has to wait (docs/performance.md measures why); other streams (TLS, memory
  streams in tests) use ``receive_some``/``send_all``.
- A client that goes away (EOF, reset, a failed write) makes ``receive()`` return
  ``http.disconnect`` and starts the app's grace deadline; ``send()`` raises
  :class:`~trio_asgi.ClientDisconnected` once a write has failed.
- Closing after a response is a lingering close: FIN (``shutdown(SHUT_WR)``), then the reader
  drains what the client still sends until EOF or ``LINGER_TIMEOUT``, so the client reads our
  last response instead of a reset.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Final

import trio
from wsproto.utilities import RemoteProtocolError as WebSocketHandshakeError

from .. import _tasks as tasks
from .._app import call_app
from .._context import ServerContext
from .._errors import ClientDisconnected, InvalidMessage
from .._http.exchange import RequestCycle
from .._http.scope import http_scope
from .._logging import error_logger, format_address, log_access
from .._types import Address
from .._ws.frames import reject_handshake
from .._ws.protocol import WebSocketProtocol
from .._ws.session import WebSocketSession
from .._ws.settings import WebSocketSettings
from .parsing import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    ParseError,
    RequestHead,
)
from .policy import check_request_head, is_websocket_upgrade
from .response import FramingError, ResponseWriter, informational, reason_phrase

__all__ = ["HTTP11Connection"]

READ_SIZE: Final = 64 * 1024  # bytes asked of the socket per receive_some (64 KiB)
LINGER_TIMEOUT: Final = 2.0  # seconds the reader drains the client after our FIN
EVENTS_PER_CHECKPOINT: Final = 64  # parser events the reader handles between checkpoints
SERVER_HEADER: Final = (b"server", b"trio-asgi")
_FOLD_STARTS: Final = (b" ", b"\t")  # a read starting with one may continue a folded line


class HTTP11Connection:
    """Serve HTTP/1.1 requests on one stream until either side closes it.

    Args:
        stream: any :class:`trio.abc.Stream`; a :class:`trio.SocketStream` also provides
            ``scope["client"]`` and ``scope["server"]``. Tests pass memory streams.
        context: the per-server :class:`~trio_asgi._context.ServerContext`.

    Resource handling:
        :meth:`run` always closes ``stream`` before returning.

    Error handling:
        App exceptions are logged once and answered with a 500 (or an abort, if the
        response had begun); malformed requests get the status the parser suggests (400,
        431, 501) or the one :func:`~trio_asgi._http.scope.check_request_head` gives (505, 400), and
        a close. Network errors end the connection quietly.
    """

    __slots__ = (
        "_client_eof",
        "_closing",
        "_cycle",
        "_draining",
        "_fd",
        "_head_bytes",
        "_head_started",
        "_maybe_folded",
        "_read_scope",
        "_reader_done",
        "_reader_wakeup",
        "_rejection",
        "_request",
        "_requests",
        "_stream_closed",
        "_write_lock",
        "broken",
        "client",
        "config",
        "context",
        "nursery",
        "parser",
        "request_started_at",
        "response_begun",
        "server",
        "stream",
        "websocket",
    )

    def __init__(self, stream: trio.abc.Stream, context: ServerContext) -> None:
        self.context = context
        self.config = context.config
        self.parser = context.new_parser(context.config.max_header_size)
        self.client, server = _socket_addresses(stream)
        self.server = None if server is None else context.local_address(*server)
        self.broken = False  # writes can no longer succeed
        self.stream = stream
        # A plain TCP socket is read and written through its file descriptor, under Trio's
        # wait_readable/wait_writable, skipping SocketStream's per-call machinery on the hot
        # path (docs/performance.md); any other stream (TLS, memory streams) goes through
        # the stream's own methods. -1: no descriptor.
        self._fd = _stream_fd(stream)
        self._stream_closed = False
        self._cycle: RequestCycle | None = None
        self._read_scope = trio.CancelScope()
        self._reader_wakeup: trio.Event | None = None
        self._reader_done = False
        # Held by a write that awaits (a full send buffer, a non-socket stream, the FIN), so
        # no other write interleaves; made on first need (see write()).
        self._write_lock: trio.StrictFIFOLock | None = None
        self._closing = context.shutting_down  # serve no request after the current one
        self._draining = False  # our last response is out: discard input until EOF
        self._client_eof = False
        # (status, extra headers, body) owed to a request we refuse
        self._rejection: tuple[int, list[tuple[bytes, bytes]], bytes | None] | None = None
        self.websocket: WebSocketSession | None = None  # set once a request upgrades
        self.request_started_at = 0.0  # time.perf_counter() of the current request
        self._requests = 0  # served on this connection, for max_requests_per_connection
        self._head_started = False  # the next request's first bytes have arrived
        # Bytes received toward the next head, and whether a read held "\n " or "\n\t": when
        # either could matter, the raw head is measured (see _check_raw_head).
        self._head_bytes = 0
        self._maybe_folded = False
        self._request: RequestHead | None = None  # the head of the request being answered
        self.response_begun = False  # bytes of a response went out in this request cycle
        self.nursery: trio.Nursery  # the connection nursery, set by run()
        context.connections.add(self)  # until run() ends

    # -- lifetime --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection: open its nursery, start the reader, close the stream at the end.

        This is the connection task's whole body (no wrapper task per connection: every
        idle keep-alive connection holds its frames). An unexpected exception, which would
        be a bug in trio-asgi, is logged once and ends this connection only, never the
        server; cancellation propagates as usual.
        """
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self._read_scope.deadline = trio.current_time() + self.config.keep_alive_timeout
                nursery.start_soon(self._read_loop, name=tasks.READER.name)
        except Exception:  # noqa: BLE001 - a bug in one connection must not stop the server
            error_logger.exception(
                "Unexpected error on the connection from %s", format_address(self.client)
            )
        finally:
            self.context.connections.discard(self)
            await self.close_stream()

    def begin_shutdown(self) -> None:
        """Graceful shutdown: close now if idle (a lingering close), else after the response
        in flight.

        A response whose head has not been written yet carries ``Connection: close``.
        """
        self._closing = True
        if self.websocket is not None:
            self.websocket.begin_shutdown()
        elif self.is_idle and not self._stream_closed:
            # A lingering close, not an abrupt one: a request that crosses our FIN is read
            # and dropped, so the client sees EOF instead of a reset.
            self._begin_close()

    def stop_keep_alive(self) -> None:
        """Serve no request after the current one (its response says ``close``)."""
        self._closing = True

    @property
    def closing(self) -> bool:
        """No request will be served after the current one (its response says ``close``)."""
        return self._closing

    @property
    def is_idle(self) -> bool:
        """No request is in progress and none has begun to arrive."""
        return self._stream_closed or (
            self._cycle is None and self.websocket is None and not self.parser.in_request
        )

    # -- the reader task -------------------------------------------------------------------

    async def _read_loop(self) -> None:
        parser = self.parser
        fd = self._fd
        early: bytes | None = None  # read at once when a timer came due (_input_in_time)
        polled_scope: trio.CancelScope | None = None  # the read scope made for those bytes
        while True:
            with self._read_scope:
                while True:
                    if early is not None:
                        data, early = early, None
                    elif not self._draining and not self._may_read():
                        await self.wait_for_resume()
                        continue
                    elif fd >= 0:
                        # Wait first, then read: between requests the next one has almost never
                        # arrived yet, and a read that fails with EAGAIN costs a syscall and an
                        # exception. (Inline, not a helper coroutine: one frame less held by
                        # every idle connection.)
                        try:
                            await trio.lowlevel.wait_readable(fd)
                        except trio.ClosedResourceError:
                            data = b""
                        else:
                            read = self._read_now()
                            if read is None:
                                continue  # a spurious wakeup
                            data = read
                    else:
                        data = await self._receive_stream()
                    if self._draining or self._stream_closed:
                        if data and not self._stream_closed:
                            continue
                        break
                    if data and self._last_request_received():
                        # RFC 9112 section 9.6: the connection closes after this request's
                        # response, so what follows it is ignored (only its EOF matters).
                        continue
                    parser.receive_data(data)
                    self._head_bytes += len(data)
                    if _has_fold(data) or data[:1] in _FOLD_STARTS:
                        # A read that starts with SP/HTAB may continue a line whose LF ended
                        # the previous read: the answer must not depend on where TCP split
                        # the bytes (RFC 9112 section 5.2).
                        self._maybe_folded = True
                    if not data:
                        self._client_eof = True
                        if self._cycle is not None:
                            self._cycle.disconnect()
                    elif data[:1] == b"\x16" and self._cycle is None and not self._head_started:
                        # A TLS handshake record where a request head should start: the client
                        # does not speak plain HTTP, so it gets no HTTP response, just a close.
                        error_logger.debug(
                            "TLS handshake on a plain-HTTP port from %s",
                            format_address(self.client),
                        )
                        self._closing = True
                        break
                    await self._process_events()
                    if self.websocket is not None:  # upgraded: the same task reads frames now
                        await self.websocket.read_frames(parser.trailing_data)
                        break
                    if not data or (parser.failed and not self._draining):
                        break
                    if self._cycle is None and not self._head_started and data:
                        self._on_head_start()
            if self._timer_fired_while_busy():
                # The keep-alive (or head) deadline set before this request came due while
                # the app still works on it. No timer runs on a request in progress, so the
                # reader reads on under a fresh scope (setting the deadline to infinity on
                # every request instead would cost two deadline changes per request).
                self._read_scope = trio.CancelScope()
                continue
            if self._read_scope is not polled_scope:
                early = self._input_in_time()
                if early is not None:
                    # Served under the deadline that came due (a head must still complete
                    # with what arrived; a new head's start sets its own), polled once.
                    polled_scope = trio.CancelScope(deadline=self._read_scope.deadline)
                    self._read_scope = polled_scope
                    continue
            break
        self._reader_done = True
        if self._read_scope.cancelled_caught and self._head_timed_out():
            # request_header_timeout: the head began but did not arrive in time. 408, then a
            # lingering close (the client may still be sending: closing on unread bytes would
            # reset the connection and lose the 408).
            error_logger.debug("Request head timed out from %s", format_address(self.client))
            self._draining = True
            with trio.move_on_after(LINGER_TIMEOUT):
                try:
                    await self._send_error_response(408)
                    if isinstance(self.stream, trio.abc.HalfCloseableStream):
                        await self.stream.send_eof()
                    while await self.stream.receive_some(READ_SIZE):
                        pass
                except (ClientDisconnected, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client is gone: nothing left to tell it
        if self._draining or self._cycle is None:
            await self.close_stream()

    def _last_request_received(self) -> bool:
        """The request in progress is complete and closes the connection (HTTP/1.0, or
        ``Connection: close``): no byte after it is a request."""
        request = self._request
        return request is not None and not request.keep_alive and self.parser.request_complete

    def _input_in_time(self) -> bytes | None:
        """Bytes already waiting when the keep-alive or head deadline came due, read without
        blocking; None if there are none, or the reader stopped for another reason.

        After a stall (the process stopped and resumed, a paused VM, a long GC pause) a
        deadline can come due in the same scheduler pass that would have seen the client's
        next bytes: poll(2)'s timeout ran out during the stall, so it reported nothing. Those
        bytes arrived in time and are served, never answered with a reset. Only a plain
        socket can be read without blocking; other streams (TLS) close on the timer.
        """
        if (
            self._fd < 0
            or not self._read_scope.cancelled_caught
            or self._closing  # shutdown, a refused request, or the stream ended
            or self._draining
            or self._stream_closed
            or self._cycle is not None
            or self.websocket is not None
        ):
            return None
        return self._read_now() or None  # b"": EOF, nothing to serve

    def _timer_fired_while_busy(self) -> bool:
        """The read scope was cancelled by its deadline while a request was in progress.

        Every deliberate cancel of the read scope (shutdown while idle, the lingering close,
        closing the stream) happens with no request in progress, or while draining, or once
        the stream is closed; a WebSocket session sets its own deadlines.
        """
        return (
            self._read_scope.cancelled_caught
            and self._cycle is not None
            and self.websocket is None
            and not self._draining
            and not self._stream_closed
        )

    def _read_now(self) -> bytes | None:
        """Read the socket once it is readable: ``b""`` for EOF, a reset, or a stream closed
        under the reader; ``None`` if there was nothing to read after all."""
        if self._stream_closed:  # closed while this task was being woken: fd is stale
            return b""
        try:
            return os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            return b""  # reset by the peer

    async def receive_some(self) -> bytes:
        """The next bytes from the client, up to 64 KiB; ``b""`` for EOF, a reset, or a
        stream closed under the caller. For the WebSocket reader, after the upgrade."""
        fd = self._fd
        if fd < 0:
            return await self._receive_stream()
        while True:
            try:
                await trio.lowlevel.wait_readable(fd)
            except trio.ClosedResourceError:
                return b""
            data = self._read_now()
            if data is not None:
                return data

    async def _receive_stream(self) -> bytes:
        """The next bytes from a stream that is not a plain socket (TLS, memory streams)."""
        try:
            return bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""  # reset or closed under us: the same as EOF for the reader

    def _on_head_start(self) -> None:
        """The first bytes of a request head arrived: from now on the head has
        ``request_header_timeout`` seconds, whatever the keep-alive timer said."""
        if not self.parser.in_request:
            return
        self._head_started = True
        self._read_scope.deadline = trio.current_time() + self.config.request_header_timeout

    def _head_timed_out(self) -> bool:
        return (
            self._head_started
            and self._cycle is None
            and not self._draining
            and not self._stream_closed
            and self._request is None
        )

    def _may_read(self) -> bool:
        limit = self.config.body_buffer_size
        cycle = self._cycle
        if cycle is not None and cycle.buffered >= limit:
            return False
        parser = self.parser
        return not (parser.request_complete and len(parser.trailing_data) >= limit)

    async def wait_for_resume(self) -> None:
        self._reader_wakeup = trio.Event()
        await self._reader_wakeup.wait()

    def resume_reading(self) -> None:
        """Wake the reader if backpressure had stopped it."""
        if self._reader_wakeup is not None:
            self._reader_wakeup.set()
            self._reader_wakeup = None

    # -- events ----------------------------------------------------------------------------

    async def _process_events(self) -> None:
        """Handle every event the parser can give now, then answer a refused request if any.

        Fairness: every ``EVENTS_PER_CHECKPOINT`` events it lets other tasks run, so one read
        of cheap input (thousands of tiny chunks) cannot hold up every other client. The
        checkpoint is shielded: the events already received are handled whatever the read
        scope's deadline says.
        """
        while self._handle_events(EVENTS_PER_CHECKPOINT):
            await trio.lowlevel.cancel_shielded_checkpoint()
        if self._rejection is not None:
            await self._reject_pending()

    def _handle_events(self, budget: int = -1) -> bool:
        """Hand the parser's events on until it needs data (False), or, after ``budget``
        events (-1: no bound), until the budget is spent with events maybe left (True)."""
        parser = self.parser
        # A refused request's body is never handed on; an upgraded connection's bytes are
        # wsproto's from the upgrade request on.
        while self._rejection is None and self.websocket is None:
            if budget == 0:
                return True
            budget -= 1
            measure = self._cycle is None and (
                self._maybe_folded or self._head_bytes > self.config.max_header_size
            )
            before = parser.trailing_data if measure else b""
            try:
                event = parser.next_event()
            except ParseError as exc:
                self._on_protocol_error(exc)
                return False
            event_type = type(event)
            if event_type is bytes:
                if self._cycle is not None:
                    self._cycle.feed_body(event)  # type: ignore[arg-type]
            elif event_type is RequestHead:
                if measure:
                    raw_head = before[: len(before) - len(parser.trailing_data)]
                    if not self._check_raw_head(raw_head):
                        return False
                self._start_cycle(event)  # type: ignore[arg-type]
            elif event is END_OF_MESSAGE:
                if self._cycle is not None:
                    self._cycle.end_body()
                return False  # nothing comes before start_next_cycle(): skip the PAUSED
            elif event is NEED_DATA or event is PAUSED or event is CONNECTION_CLOSED:
                return False
        return False

    def _check_raw_head(self, raw_head: bytes) -> bool:
        """What a parsed head hides: its real size and obsolete line folding.

        The parsers strip whitespace around values and h11 unfolds obs-fold lines, so these
        are checked on the raw bytes: a head over ``max_header_size`` gets 431 however it
        arrived, and a folded header line gets 400 (RFC 9112 section 5.2 allows that; a folded
        ``Transfer-Encoding`` is a request-smuggling vector). False if the request is refused.
        """
        if len(raw_head) > self.config.max_header_size:
            status, reason = 431, f"the request head is over {self.config.max_header_size} bytes"
        elif _has_fold(raw_head):
            status, reason = 400, "obsolete line folding (obs-fold) is not accepted"
        else:
            return True
        error_logger.debug("Refused request from %s: %s", format_address(self.client), reason)
        self._closing = True
        self._rejection = (status, [], None)
        return False

    def _start_cycle(self, request: RequestHead) -> None:
        # Busy: the keep-alive and head timers no longer apply. Their deadline is left as it
        # is (see _timer_fired_while_busy) and reset when the response is done.
        self._head_started = False
        self._head_bytes = 0
        self._maybe_folded = False
        self._request = request
        self._requests += 1
        limit = self.config.max_requests_per_connection
        if limit is not None and self._requests >= limit:
            self._closing = True  # this response says Connection: close
        refusal = check_request_head(
            request.http_version,
            request.target,
            request.headers,
            max_body_size=self.config.max_request_body_size,
        )
        if refusal is not None:
            status, reason = refusal
            error_logger.debug("Refused request from %s: %s", format_address(self.client), reason)
            self._closing = True
            self._rejection = (status, [], None)
            return
        self.request_started_at = time.perf_counter()
        if self.config.ws == "auto" and is_websocket_upgrade(request.method, request.headers):
            self._start_websocket(request)
            return
        scope = http_scope(
            method=request.method,
            target=request.target,
            http_version=request.http_version,
            headers=request.headers,
            scheme="http",
            client=self.client,
            server=self.server,
            root_path=self.config.root_path,
            state=self.context.state,
        )
        cycle = RequestCycle(self, request, scope)
        self._cycle = cycle
        if self._client_eof:
            cycle.disconnect()
        self.context.spawn_app(self.nursery, self._run_app, cycle, name=tasks.APP.name)

    def _start_websocket(self, request: RequestHead) -> None:
        context = self.context
        settings = WebSocketSettings.from_config(self.config)
        try:
            channel = WebSocketProtocol(self, request, settings, client=self.client)
        except WebSocketHandshakeError as exc:
            error_logger.debug(
                "Invalid WebSocket handshake from %s: %s", format_address(self.client), exc
            )
            self._closing = True
            self._rejection = reject_handshake(exc)
            return
        session = WebSocketSession(
            channel,
            request,
            settings=settings,
            app=context.app,
            state=context.state,
            client=self.client,
            server=self.server,
            started_at=self.request_started_at,
            tasks=self.nursery,
            shutting_down=lambda: context.shutting_down,
        )
        self.websocket = session
        self._read_scope.deadline = math.inf  # the session sets its own (the close handshake)
        self.context.spawn_app(self.nursery, session.run_app, name=tasks.WEBSOCKET_APP.name)

    def _on_protocol_error(self, exc: ParseError) -> None:
        error_logger.debug("Invalid HTTP request from %s: %s", format_address(self.client), exc)
        self._closing = True
        cycle = self._cycle
        if cycle is None:
            self._rejection = (exc.error_status_hint, [], None)  # answered by _reject_pending
        else:
            # The body broke off mid-way: the app sees a disconnect, and if it has not
            # answered when it returns, the client gets the parser's suggested status.
            if cycle.protocol_error is None:  # the first error wins (a 413 stays a 413)
                cycle.protocol_error = exc
            cycle.wake()

    async def _reject_pending(self) -> None:
        """Answer a refused or malformed request with its status, then close."""
        rejection = self._rejection
        if rejection is None:
            return  # the reader and a spawned task may both get here; one answers
        self._rejection = None
        if not self.broken and not self.response_begun:
            with contextlib.suppress(ClientDisconnected):  # gone: closing is all that is left
                await self._send_error_response(*rejection)
        self._begin_close()

    # -- the app task ----------------------------------------------------------------------

    async def _run_app(self, cycle: RequestCycle) -> None:
        error = await call_app(
            self.context.app,
            cycle.scope,
            cycle.receive,
            cycle.send,
            cancel_scope=cycle.cancel_scope,
            describe=cycle.describe,
            client=self.client,
        )
        if cycle.response_complete:
            return
        gone = cycle.disconnected or cycle.protocol_error is not None
        if error is None and not (gone or cycle.cancel_scope.cancelled_caught):
            if cycle.response_started:
                error_logger.error("ASGI callable returned without completing response.")
            else:
                error_logger.error("ASGI callable returned without starting response.")
        if (
            not cycle.disconnected
            and not self.broken
            and not self.response_begun
            and not cycle.framing_failed
        ):
            # Nothing of the response was written yet: replace it with an error response.
            status = 500 if cycle.protocol_error is None else cycle.protocol_error.error_status_hint
            try:
                await self._send_error_response(status)
            except ClientDisconnected:
                await self.close_stream()
                return
            if self.config.access_log:
                log_access(
                    self.client,
                    cycle.request.method,
                    cycle.request.target,
                    cycle.request.http_version,
                    status,
                    cycle.started_at,
                )
            self._begin_close()
        else:
            # Part of the response is out (or the client is gone): a truncated response on
            # a keep-alive connection must never be followed by another, so close at once.
            await self.close_stream()

    # -- writing ---------------------------------------------------------------------------

    def response_writer(self, status: int, headers: list[tuple[bytes, bytes]]) -> ResponseWriter:
        """Build the response head for the current request, adding ``Date``/``Server``
        and, when the connection will close after it, ``Connection: close``.

        An app's ``Transfer-Encoding`` header is dropped: the server chooses the framing
        (ASGI HTTP spec, "Response Start").

        Raises:
            InvalidMessage: a header name or value is not valid HTTP (RFC 9110 section 5).
        """
        names = {name.lower() for name, _ in headers}
        if b"transfer-encoding" in names:
            headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        defaults = self._default_headers(names)
        cycle = self._cycle
        request = self._request
        waiting_for_continue = cycle is not None and cycle.expecting_continue
        if self.context.shutting_down or waiting_for_continue:
            # Shutting down, or the client still holds back a body we will not read.
            self._closing = True
        try:
            writer = ResponseWriter(
                status,
                headers,
                request_method=None if request is None else request.method,
                http_version=None if request is None else request.http_version,
                keep_alive=(request is None or request.keep_alive) and not self._closing,
                defaults=defaults,
            )
        except FramingError as exc:
            raise InvalidMessage(f"'http.response.start' has an invalid header: {exc}") from None
        if not writer.keep_alive:
            self._closing = True
        return writer

    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The ``Date`` and ``Server`` headers to add to ``headers`` (as configured)."""
        return self._default_headers({name.lower() for name, _ in headers})

    def _default_headers(self, names: set[bytes]) -> list[tuple[bytes, bytes]]:
        defaults: list[tuple[bytes, bytes]] = []
        if self.config.date_header and b"date" not in names:
            defaults.append((b"date", self.context.date_header.value()))
        if self.config.server_header and b"server" not in names:
            defaults.append(SERVER_HEADER)
        return defaults

    def set_read_deadline(self, deadline: float) -> None:
        """Bound the reader: it stops at ``deadline`` (trio time) unless that is later."""
        self._read_scope.deadline = min(self._read_scope.deadline, deadline)

    async def write(self, data: bytes, *, final: bool = False) -> None:
        """Hand ``data`` to the socket; returns once it is in the kernel's send buffer.

        A checkpoint (Trio's rule: if cancelled, nothing was written), except that with
        ``final`` (the write that completes a response) it does not yield once it has
        written.

        Raises:
            ClientDisconnected: the connection is closed or the write failed.
        """
        if self.broken:
            raise ClientDisconnected("the client closed the connection")
        if self._fd < 0 or self._write_locked():
            await self._write_stream(data)
            return
        # The fast path: one write(2) that usually takes all of ``data``. Cancellation is
        # checked first, so a cancelled send() writes nothing (Trio's checkpoint rule).
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.broken:  # closed while the cancellation check ran
            raise ClientDisconnected("the client closed the connection")
        # Synchronous from here to the write: no other task can write in between, so no
        # lock is needed unless this write has to wait.
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._write_failed()
            raise ClientDisconnected("the client closed the connection") from exc
        if written < len(data):
            # The socket's send buffer is full (backpressure): the rest waits for it to
            # drain, under the lock so no other write can interleave.
            lock = self._lock()
            lock.acquire_nowait()  # free: checked above, and nothing awaited since
            try:
                await self._send_all(memoryview(data)[written:])
            finally:
                lock.release()
            return
        if not final:
            # A checkpoint, so an app streaming to a fast client still lets other tasks
            # run. The write that completes a response skips it: the app task is about
            # to end, which is a scheduling point anyway.
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def _write_stream(self, data: bytes) -> None:
        async with self._lock():
            await self._send_all(data)

    def _lock(self) -> trio.StrictFIFOLock:
        if self._write_lock is None:
            self._write_lock = trio.StrictFIFOLock()
        return self._write_lock

    def _write_locked(self) -> bool:
        return self._write_lock is not None and self._write_lock.locked()

    async def _send_all(self, data: bytes | memoryview) -> None:
        """``stream.send_all(data)``, holding the write lock; marks the connection broken if
        the write fails or is cancelled part-way."""
        written = False
        try:
            await self.stream.send_all(data)
            written = True
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._write_failed()
            raise ClientDisconnected("the client closed the connection") from exc
        finally:
            # Cancelled part-way, an unknown part of ``data`` is out: whatever was
            # written next would corrupt the stream, so nothing more is.
            self.broken = self.broken or not written

    def _write_failed(self) -> None:
        self.broken = True
        if self._cycle is not None:
            self._cycle.disconnect()

    async def send_continue(self) -> None:
        """Send ``100 Continue`` (RFC 9110 section 10.1.1), when the app first waits for body."""
        await self.write(informational(100))

    async def _send_error_response(
        self,
        status: int,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the current request (or unparseable bytes) with ``status`` and close.

        The body is a one-line text (by default the status and its reason phrase); a HEAD
        request gets the same headers and no body.
        """
        if body is None:
            body = f"{status} {(reason_phrase(status) or b'Error').decode()}\n".encode()
        headers = [
            *(extra_headers or ()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        self._closing = True
        writer = self.response_writer(status, headers)
        self.response_begun = True
        await self.write(writer.head + writer.body(body) + writer.end())

    def response_done(self) -> None:
        """The response is fully written: start the next request cycle, or begin closing.

        Synchronous, so no cancellation can stop it half-way; what must be awaited (a FIN,
        an error response to a pipelined bad request) runs in a short task of the
        connection nursery, outside the app's cancel scope.
        """
        parser = self.parser
        if self._closing or not parser.request_complete:
            # Connection: close, HTTP/1.0, shutdown, or a request body still arriving that the
            # app did not read: finish with a lingering close.
            self._begin_close()
            return
        parser.start_next_cycle()
        self._cycle = None
        self._request = None
        self.response_begun = False
        # A pipelined head already buffered is measured and checked like one the reader
        # reads: its size, its folds, and (if incomplete) its head timer.
        trailing = parser.trailing_data
        self._head_bytes = len(trailing)
        self._maybe_folded = _has_fold(trailing)
        self._read_scope.deadline = trio.current_time() + self.config.keep_alive_timeout
        if parser.in_request:
            self._handle_events()  # a pipelined request is buffered already
            if self._cycle is None and self.websocket is None and self._rejection is None:
                self._on_head_start()  # part of the next head is here: its timer runs
        if self._rejection is not None:
            self.nursery.start_soon(self._reject_pending, name=tasks.CLOSING.name)
        elif self._reader_done and self._cycle is None:
            self._begin_close()  # the client closed its side and nothing is left to serve
        self.resume_reading()

    def _begin_close(self) -> None:
        """Lingering close: no more requests; FIN goes out (from a short task) and the reader
        discards what the client still sends until its EOF or ``LINGER_TIMEOUT`` seconds."""
        self._closing = True
        if self._draining:
            return
        self._draining = True
        self._read_scope.deadline = min(
            self._read_scope.deadline, trio.current_time() + LINGER_TIMEOUT
        )
        self.resume_reading()
        if (
            self._fd >= 0
            and not self._reader_done
            and not self._stream_closed
            and not self._write_locked()
        ):
            # A plain socket half-closes with one synchronous shutdown(2): no task needed.
            try:
                self.stream.socket.shutdown(trio.socket.SHUT_WR)  # type: ignore[attr-defined]
            except OSError:
                self._read_scope.cancel()  # the peer is gone already: nothing to drain
            return
        self.nursery.start_soon(self._send_fin, name=tasks.CLOSING.name)

    async def _send_fin(self) -> None:
        if self._reader_done:
            await self.close_stream()  # nothing to drain: close now
            return
        stream = self.stream
        if isinstance(stream, trio.abc.HalfCloseableStream) and not self._stream_closed:
            try:
                async with self._lock():
                    await stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._read_scope.cancel()  # the peer is gone already: nothing to drain
        else:
            self._read_scope.cancel()  # cannot half-close (e.g. TLS): the reader stops now

    async def close_stream(self) -> None:
        if self._stream_closed:
            return
        self._stream_closed = True
        self.broken = True
        self._read_scope.cancel()
        if self._fd >= 0:
            self.stream.socket.close()  # type: ignore[attr-defined]  # synchronous
        else:
            await trio.aclose_forcefully(self.stream)


def _has_fold(data: bytes) -> bool:
    """Whether ``data`` holds a line that starts with SP or HTAB: obs-fold in a head (RFC
    9112 section 5.2)."""
    return b"\n " in data or b"\n\t" in data


def _socket_addresses(stream: trio.abc.Stream) -> tuple[Address | None, Address | None]:
    """``(client, server)`` addresses of a socket stream; ``(None, None)`` for other streams."""
    if not isinstance(stream, trio.SocketStream):
        return None, None
    try:
        peer = stream.socket.getpeername()
        local = stream.socket.getsockname()
    except OSError:  # the peer reset the connection before we asked: no address to report
        return None, None
    # An IPv4 peer address is already a (str, int) pair: keep it rather than copy it.
    client = peer if len(peer) == 2 else (str(peer[0]), int(peer[1]))
    return client, (str(local[0]), int(local[1]))


def _stream_fd(stream: trio.abc.Stream) -> int:
    """The file descriptor of a plain TCP :class:`trio.SocketStream` on a POSIX system; -1
    for any other stream, or on Windows (where sockets are not file descriptors)."""
    if os.name != "posix" or type(stream) is not trio.SocketStream:
        return -1
    return stream.socket.fileno()
