"""HTTP/1.1 on one connection: requests, responses, keep-alive and pipelining.

``_connection.handle_connection`` opens the connection nursery and calls
:meth:`HTTP11Connection.start_reader` in it; everything below runs in that nursery::

    connection nursery (handle_connection)
    ├── reader task (_read_loop)      "trio-asgi reader": transport bytes -> parser -> request
    │                                 events, inside the read cancel scope, whose deadline
    │                                 the read phase decides (reader.py, HTTP11Reader)
    ├── app task (RequestCycle.run_app) "trio-asgi app": app(scope, receive, send) for one
    │                                 request, inside that request's cancel scope
    └── closing task                  "trio-asgi closing": short-lived, only when the FIN cannot
                                      go out synchronously, or a refused pipelined request
                                      needs its 4xx

How the parts divide the work:

- The parser (``parsing.py``: h11, or httptools) owns the request side of the protocol;
  ``response.py`` frames responses; ``policy.py`` refuses what the parsers accept but a
  server must not; ``_http/exchange.py`` keeps one request's ASGI rules; the transport
  (``_net/transport.py``) moves the bytes. ``reader.py`` (:class:`HTTP11Reader`, which
  this class extends) holds the connection's state and reads; this module does what
  HTTP/1.1 does with what is read: it starts, refuses and answers requests.
- Only the reader reads. It hands events to the current request's
  :class:`~trio_asgi._http.exchange.RequestCycle` synchronously and stops reading
  (backpressure) while ``body_buffer_size`` bytes of body, or of pipelined requests, wait.
- The app task that completes a response starts the next request cycle itself
  (:meth:`HTTP11Connection.response_done`, synchronous so no cancellation can cut it short),
  so responses go out in request order with no extra task hop.
- Closing after a response is a lingering close: FIN, then the reader drains what the
  client still sends until EOF or ``LINGER_TIMEOUT``, so the client reads our last response
  instead of a reset.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from typing import Final

import trio
from wsproto.utilities import RemoteProtocolError as WebSocketHandshakeError

from .. import _tasks as tasks
from .._context import ServerContext
from .._errors import ClientDisconnected, InvalidMessage
from .._http.exchange import RequestCycle
from .._http.forwarded import Forwarded, resolve_forwarded
from .._http.scope import http_scope
from .._logging import error_logger, format_address
from .._net.transport import Transport
from .._types import Address, ConnectionInfo
from .._ws.frames import reject_handshake
from .._ws.protocol import WebSocketProtocol
from .._ws.session import WebSocketSession
from .parsing import CONNECTION_CLOSED, END_OF_MESSAGE, NEED_DATA, PAUSED, ParseError, RequestHead
from .policy import (
    check_raw_head,
    check_request_head,
    has_fold,
    is_websocket_upgrade,
)
from .reader import _BUSY, _CLOSED, _IDLE, HTTP11Reader, ReadPhase
from .response import FramingError, ResponseWriter, early_hints, error_response, informational
from .settings import HTTP11Settings

__all__ = ["HTTP11Connection"]

EVENTS_PER_CHECKPOINT: Final = 64  # parser events the reader handles between checkpoints

Rejection = tuple[int, list[tuple[bytes, bytes]], "bytes | None"]  # status, headers, body


class HTTP11Connection(HTTP11Reader):
    """Serve HTTP/1.1 requests on one transport until either side closes it.

    Args:
        transport: the connection's :class:`~trio_asgi._net.transport.Transport`.
        info: the client and server addresses and the scheme, for every scope.
        context: the per-server :class:`~trio_asgi._context.ServerContext` (the app, the
            lifespan state, graceful shutdown); the connection adds itself to its
            ``connections`` until ``handle_connection`` ends.
        settings: the server's :class:`~trio_asgi._h11.settings.HTTP11Settings`.

    Error handling:
        App exceptions are logged once and answered with a 500 (or an abort, if the
        response had begun); malformed requests get the status the parser suggests (400,
        431, 501) or the one :func:`~trio_asgi._h11.policy.check_request_head` gives (505,
        400, 413), and a close. Network errors end the connection quietly.
    """

    __slots__ = (
        "_is_unix",
        "_rejection",
        "_requests",
        "context",
        "response_begun",
        "scheme",
        "server",
        "tls",
    )

    def __init__(
        self,
        transport: Transport,
        info: ConnectionInfo,
        context: ServerContext,
        settings: HTTP11Settings,
    ) -> None:
        client, self.server, self.scheme = info
        super().__init__(transport, client, settings, closing=context.shutting_down)
        # For forwarded_allow_ips' "unix": a TCP peer has an address; only a peer without
        # one is looked at (a Unix socket under TLS is not seen through the TLS stream).
        stream = transport.stream
        self._is_unix = (
            client is None
            and isinstance(stream, trio.SocketStream)
            and stream.socket.family == socket.AF_UNIX
        )
        self.context = context
        self._rejection: Rejection | None = None  # owed to a request we refuse
        self._requests = 0  # served on this connection, for max_requests_per_connection
        self.response_begun = False  # bytes of a response went out in this request cycle
        #: The ASGI TLS extension once the TLS handshake completed (``start_tls``), else None.
        self.tls: dict[str, object] | None = None
        context.connections.add(self)

    @property
    def peer_is_unix(self) -> bool:
        """The peer is on a Unix socket (for ``forwarded_allow_ips``' ``unix``)."""
        return self._is_unix

    def set_addresses(
        self, client: Address | None, server: Address | None, *, peer_is_unix: bool
    ) -> None:
        """Use the addresses a PROXY protocol header names, before the reader starts: the
        client's is then the one proxy headers are trusted by, and every scope's."""
        self.client = client
        self.server = server
        self._is_unix = peer_is_unix

    # -- lifetime --------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Graceful shutdown: close now if idle (a lingering close), else after the response
        in flight. A response whose head has not been written yet says ``Connection: close``.
        """
        self._closing = True
        if self.websocket is not None:
            self.websocket.begin_shutdown()
        elif self.is_idle and self._phase is not _CLOSED:
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
        return self._phase is _CLOSED or (
            self._cycle is None and self.websocket is None and not self.parser.in_request
        )

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
                self._maybe_folded or self._head_bytes > self.settings.max_header_size
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
                    refusal = check_raw_head(raw_head, self.settings.max_header_size)
                    if refusal is not None:
                        self._refuse((refusal[0], [], None), "Refused request", refusal[1])
                        return False
                self._start_cycle(event)  # type: ignore[arg-type]
            elif event is END_OF_MESSAGE:
                if self._cycle is not None:
                    self._cycle.end_body()
                return False  # nothing comes before start_next_cycle(): skip the PAUSED
            elif event is NEED_DATA or event is PAUSED or event is CONNECTION_CLOSED:
                return False
        return False

    def _refuse(self, rejection: Rejection, why: str, detail: object) -> None:
        """Refuse the request whose head arrived (or failed to parse): ``rejection`` goes
        out, then the lingering close. Logged once at DEBUG: ``"<why> from <client>:
        <detail>"``."""
        error_logger.debug("%s from %s: %s", why, format_address(self.client), detail)
        self._closing = True
        self._phase = ReadPhase.REFUSED
        self._rejection = rejection

    def _start_cycle(self, request: RequestHead) -> None:
        # Busy: the keep-alive and head timers no longer apply. Their deadline is left as it
        # is (the reader sees it fire in the BUSY phase) and reset when the response is done.
        settings = self.settings
        self._phase = _BUSY
        self._head_bytes = 0
        self._maybe_folded = False
        self._request = request
        self._requests += 1
        limit = settings.max_requests_per_connection
        if limit is not None and self._requests >= limit:
            self._closing = True  # this response says Connection: close
        refusal = check_request_head(
            request.http_version,
            request.target,
            request.headers,
            max_body_size=settings.exchange.max_request_body_size,
        )
        if refusal is not None:
            self._refuse((refusal[0], [], None), "Refused request", refusal[1])
            return
        if settings.websocket is not None and is_websocket_upgrade(request.method, request.headers):
            self._start_websocket(request)
            return
        scheme, client, root_path = self.scheme, self.client, settings.root_path
        if settings.proxy is not None:
            forwarded = self._forwarded(request, scheme)
            if forwarded is not None:
                client, scheme, root_path = forwarded.client, forwarded.scheme, forwarded.root_path
        scope = http_scope(
            method=request.method,
            target=request.target,
            http_version=request.http_version,
            headers=request.headers,
            scheme=scheme,
            client=client,
            server=self.server,
            root_path=root_path,
            state=self.context.state,
            tls=self.tls,
        )
        cycle = RequestCycle(self, request, scope, settings.exchange)
        self._cycle = cycle
        if self._client_eof:
            cycle.disconnect()
        self.context.spawn_app(self.nursery, cycle.run_app, self.context.app, name=tasks.APP.name)

    def _forwarded(self, request: RequestHead, scheme: str) -> Forwarded | None:
        """The request's proxy headers read (``settings.proxy`` is set), or None if it has
        none; what was ignored is logged once at DEBUG."""
        assert self.settings.proxy is not None  # checked by the caller
        forwarded = resolve_forwarded(
            self.settings.proxy,
            self.client,
            self._is_unix,
            request.headers,
            scheme,
            self.settings.root_path,
        )
        if forwarded is not None and forwarded.note is not None:
            error_logger.debug("Proxy headers: %s", forwarded.note)
        return forwarded

    def _start_websocket(self, request: RequestHead) -> None:
        context = self.context
        settings = self.settings.websocket
        assert settings is not None  # checked by _start_cycle
        scheme = "ws" if self.scheme == "http" else "wss"
        client, root_path = self.client, self.settings.root_path
        if self.settings.proxy is not None:
            forwarded = self._forwarded(request, scheme)
            if forwarded is not None:
                client, scheme, root_path = forwarded.client, forwarded.scheme, forwarded.root_path
        try:
            channel = WebSocketProtocol(self, request, settings, client=self.client)
        except WebSocketHandshakeError as exc:
            self._refuse(reject_handshake(exc), "Invalid WebSocket handshake", exc)
            return
        session = WebSocketSession(
            channel,
            request,
            settings=settings,
            app=context.app,
            state=context.state,
            client=client,
            server=self.server,
            scheme=scheme,
            root_path=root_path,
            started_at=time.perf_counter(),
            tasks=self.nursery,
            shutting_down=lambda: context.shutting_down,
            tls=self.tls,
        )
        self.websocket = session
        self._phase = ReadPhase.UPGRADED
        self._read_scope.deadline = math.inf  # the session sets its own (the close handshake)
        self.context.spawn_app(self.nursery, session.run_app, name=tasks.WEBSOCKET_APP.name)

    def _on_protocol_error(self, exc: ParseError) -> None:
        cycle = self._cycle
        if cycle is None:
            self._refuse((exc.error_status_hint, [], None), "Invalid HTTP request", exc)
            return
        error_logger.debug("Invalid HTTP request from %s: %s", format_address(self.client), exc)
        self._closing = True
        # The body broke off mid-way: the app sees a disconnect, and if it has not answered
        # when it returns, the client gets the parser's suggested status.
        if cycle.protocol_error is None:  # the first error wins (a 413 stays a 413)
            cycle.protocol_error = exc
        cycle.wake()

    async def _reject_pending(self) -> None:
        """Answer a refused or malformed request with its status, then close."""
        rejection = self._rejection
        if rejection is None:
            return  # the reader and a spawned task may both get here; one answers
        self._rejection = None
        if not self.transport.broken and not self.response_begun:
            with contextlib.suppress(ClientDisconnected):  # gone: closing is all that is left
                await self._send_error_response(*rejection)
        self._begin_close()

    # -- the app task ----------------------------------------------------------------------

    async def replace_response(self, status: int) -> bool:
        """The app left its response unstarted: answer ``status`` instead, then a lingering
        close. False if the client is gone (the connection is closed then)."""
        try:
            await self._send_error_response(status)
        except ClientDisconnected:
            await self.close()
            return False
        self._begin_close()
        return True

    async def abort(self) -> None:
        """Part of the response is out (or the client is gone): a truncated response on a
        keep-alive connection must never be followed by another, so close at once."""
        await self.close()

    # -- writing ---------------------------------------------------------------------------

    def response_writer(self, status: int, headers: list[tuple[bytes, bytes]]) -> ResponseWriter:
        """The framing of the current request's response (``ServerHeaders.response``); it
        says ``Connection: close`` when the connection will close after it.

        Raises:
            InvalidMessage: a header name or value is not valid HTTP (RFC 9110 section 5).
        """
        cycle = self._cycle
        if self.context.shutting_down or (cycle is not None and cycle.expecting_continue):
            # Shutting down, or the client still holds back a body we will not read.
            self._closing = True
        try:
            writer = self.settings.server_headers.response(
                status, headers, request=self._request, keep_alive=not self._closing
            )
        except FramingError as exc:
            raise InvalidMessage(f"'http.response.start' has an invalid header: {exc}") from None
        if not writer.keep_alive:
            self._closing = True
        return writer

    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The ``Date`` and ``Server`` headers to add to ``headers`` (as configured)."""
        return self.settings.server_headers.missing_from({name.lower() for name, _ in headers})

    async def send_continue(self) -> None:
        """Send ``100 Continue`` (RFC 9110 section 10.1.1), when the app first waits for body."""
        await self.transport.write(informational(100))

    async def send_early_hints(self, links: list[bytes]) -> None:
        """Send ``103 Early Hints`` with one ``Link`` header per value of ``links``, already
        checked (RFC 8297 section 2); returns once it is written.

        Raises:
            ClientDisconnected: the connection is closed.
        """
        await self.transport.write(early_hints(links))

    async def _send_error_response(
        self,
        status: int,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the current request (or unparseable bytes) with ``status`` and close; a
        HEAD request gets the headers and no body."""
        headers, body = error_response(status, extra_headers, body)
        self._closing = True
        writer = self.response_writer(status, headers)
        self.response_begun = True
        await self.transport.write(writer.head + writer.body(body) + writer.end())

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
        self._phase = _IDLE
        # A pipelined head already buffered is measured and checked like one the reader
        # reads: its size, its folds, and (if incomplete) its head timer.
        trailing = parser.trailing_data
        self._head_bytes = len(trailing)
        self._maybe_folded = has_fold(trailing)
        self._read_scope.deadline = trio.current_time() + self.settings.keep_alive_timeout
        if parser.in_request:
            self._handle_events()  # a pipelined request is buffered already
            if self._phase is _IDLE:
                self._on_head_start()  # part of the next head is here: its timer runs
        if self._rejection is not None:
            self.nursery.start_soon(self._reject_pending, name=tasks.CLOSING.name)
        elif self._reader_done and self._cycle is None:
            self._begin_close()  # the client closed its side and nothing is left to serve
        self.resume_reading()
