"""One request's ASGI HTTP exchange: the ``receive`` and ``send`` an app is called with.

:class:`RequestCycle` keeps the ASGI HTTP rules (spec 2.5): body buffering with a limit and
backpressure, ``http.disconnect`` at once and from inside a cancelled scope, ``Expect:
100-continue`` on the first wait for body, message order and shapes, the response head held
until the first body message. The connection that owns it feeds it events (``feed_body``,
``end_body``, ``disconnect``) and gives it the few things it needs through
:class:`CycleOwner`; the cycle never reaches further into its connection. Today the
response is framed by HTTP/1.1's :class:`~trio_asgi._h11.response.ResponseWriter`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final

import trio

from .._app import call_app
from .._errors import ClientDisconnected, UnexpectedMessage
from .._logging import error_logger, format_address, log_access
from .._types import Address, ASGIApp, Message
from .extensions import Trailers, check_trailers_flag, early_hint_links
from .files import FileRange, send_file_message, with_file_length
from .messages import FramingError, check_message_type, check_response_body, check_response_start
from .owner import CycleOwner, ExchangeSettings, ResponseFraming
from .request import ParseError, RequestHead

if TYPE_CHECKING:
    pass

__all__ = ["CycleOwner", "ExchangeSettings", "RequestCycle", "ResponseFraming"]  # owner.py's too

_NO_LIMIT: Final = math.inf  # request_timeout off: no deadline is set
_INTERNAL_SERVER_ERROR: Final = 500  # an app that failed before its response went out
_GATEWAY_TIMEOUT: Final = 504  # request_timeout fired before (RFC 9110 section 15.6.5)
_FILE_MESSAGES: Final = frozenset({"http.response.zerocopysend", "http.response.pathsend"})
#: What ``send()`` ignores once the response is complete (ASGI HTTP spec 2.5, "Response
#: Body": "any further messages on the channel will be ignored"); an unknown type raises.
_IGNORED_WHEN_COMPLETE: Final = frozenset(
    {
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
        "http.response.early_hint",
        "http.disconnect",
        *_FILE_MESSAGES,
    }
)


class RequestCycle:
    """One request and its response: the ``receive`` and ``send`` the app is called with.

    The reader feeds it (:meth:`feed_body`, :meth:`end_body`, :meth:`disconnect`); the app
    drives it through :meth:`receive` and :meth:`send` (ASGI HTTP spec 2.5).

    Attributes:
        scope: the ``http`` connection scope.
        cancel_scope: the app task's cancel scope. Its deadline is ``timeout_at`` from the
            start, lifted once the response is complete, and lowered to the disconnect grace
            when the client leaves first (whichever is earlier wins).
        timeout_at: the ``trio.current_time()`` at which ``request_timeout`` cancels the app
            if its response is not complete by then; ``math.inf``: no request timeout.
        disconnected: the client is gone as far as ``receive()`` is concerned.
        response_started: the app sent ``http.response.start``.
        response_complete: the final body chunk has been handed to the socket.
    """

    __slots__ = (
        "_body",
        "_body_complete",
        "_conn",
        "_final_body_taken",
        "_head_pending",
        "_headers",
        "_late_message_warned",
        "_settings",
        "_trailers",
        "_waiter",
        "_writer",
        "buffered",
        "cancel_scope",
        "client",
        "disconnected",
        "expecting_continue",
        "framing_failed",
        "protocol_error",
        "received",
        "request",
        "response_complete",
        "response_started",
        "scope",
        "started_at",
        "status",
        "timeout_at",
    )

    def __init__(
        self,
        conn: CycleOwner,
        request: RequestHead,
        scope: dict[str, Any],
        settings: ExchangeSettings,
    ):
        self._conn = conn
        self._settings = settings
        self.request = request
        self.scope = scope
        self.client: Address | None = scope["client"]  # the proxy headers' client, if any
        timeout = settings.request_timeout
        if timeout == _NO_LIMIT:  # the default: nothing to set
            self.timeout_at = timeout
            self.cancel_scope = trio.CancelScope()
        else:
            self.timeout_at = trio.current_time() + timeout
            self.cancel_scope = trio.CancelScope(deadline=self.timeout_at)
        self.started_at = time.perf_counter()
        self._body: list[bytes] = []
        self.buffered = 0  # bytes of body waiting for receive()
        self.received = 0  # bytes of body received in all, for max_request_body_size
        self._body_complete = False  # the parser gave END_OF_MESSAGE
        self._final_body_taken = False  # receive() returned more_body=False
        self.disconnected = False
        self.protocol_error: ParseError | None = None
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._writer: ResponseFraming | None = None  # set by http.response.start
        self._head_pending = False  # the head is built but held for the first body message
        self.framing_failed = False  # the body broke its Content-Length: abort, do not answer
        self.expecting_continue = request.expect_continue  # owed 100 Continue, until body
        self._waiter: trio.Event | None = None
        self._late_message_warned = False
        self._trailers: Trailers | None = None  # the start said trailers: True

    def describe(self) -> str:
        """The request for a log line: ``"GET /path?query"``, quotes included."""
        return f'"{self._request_line()}"'

    def _request_line(self) -> str:
        request = self.request
        method = request.method.decode("ascii", "replace")
        return f"{method} {request.target.decode('ascii', 'replace')}"

    @property
    def timed_out(self) -> bool:
        """``request_timeout`` fired before the response was complete: the cancel scope was
        cancelled by the deadline :attr:`timeout_at` (not by an earlier disconnect grace,
        and not lifted by a complete response)."""
        scope = self.cancel_scope
        return (
            self.timeout_at != _NO_LIMIT
            and scope.cancel_called
            and scope.deadline == self.timeout_at
        )

    # -- fed by the reader task (synchronous) ------------------------------------------

    def feed_body(self, data: bytes) -> None:
        """Queue request body bytes for ``receive()``; past the body limit, refuse them."""
        self.received += len(data)
        self.expecting_continue = False
        limit = self._settings.max_request_body_size
        if limit is not None and self.received > limit:
            if self.protocol_error is None:
                self._fail(413, f"the request body is over {limit} bytes")
            return  # read and dropped: never buffered
        if self.protocol_error is not None:
            return
        self._body.append(data)
        self.buffered += len(data)
        self.wake()

    def end_body(self) -> None:
        """The request body is complete (the parser's ``END_OF_MESSAGE``)."""
        self._body_complete = True
        self.expecting_continue = False
        self.wake()

    def disconnect(self) -> None:
        """The client went away: ``receive()`` reports it and the app's grace period starts.

        The grace deadline replaces the request timeout's only if it is earlier; after the
        request timeout fired, the app is already cancelled and the connection is aborted
        once it returns (no 504 is written to a client that left). Once the response is
        complete there is nothing left to cut short: an app that runs on (background work
        after the response) is not given a deadline.
        """
        if self.disconnected:
            return
        self.disconnected = True
        if not self.response_complete:
            grace_deadline = trio.current_time() + self._settings.disconnect_timeout
            self.cancel_scope.deadline = min(self.cancel_scope.deadline, grace_deadline)
        self.wake()

    def _fail(self, status: int, reason: str) -> None:
        """The request cannot be completed: the app sees ``http.disconnect``; if it has not
        responded when it returns, the client gets ``status``; the connection then closes."""
        self.protocol_error = ParseError(reason, status)
        self._body = []
        self.buffered = 0
        self._conn.stop_keep_alive()
        self.wake()

    def wake(self) -> None:
        """Wake a ``receive()`` waiting for the next event."""
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    # -- the ASGI receive callable -------------------------------------------------------

    async def receive(self) -> Message:
        """Return the next ``http.request`` or ``http.disconnect`` event (ASGI HTTP 2.5).

        Body bytes already buffered, and a disconnect already known, are returned without a
        checkpoint, so this works from inside an already-cancelled scope (Starlette's
        ``is_disconnected()`` relies on it). After the response is complete, or once the
        client has gone and its body is delivered, every call returns ``http.disconnect``.
        The first call that has to wait for body bytes answers ``Expect: 100-continue``.
        """
        while True:
            if self.response_complete:
                return {"type": "http.disconnect"}
            if self._body:
                return self._take_body()
            if self.protocol_error is not None:  # a broken, oversized or timed-out body
                return {"type": "http.disconnect"}
            if self._body_complete and not self._final_body_taken:
                return self._take_body()
            if self.disconnected:
                return {"type": "http.disconnect"}
            if self._final_body_taken:
                # Nothing more will come but the end of the cycle or of the connection.
                await self._wait()
                continue
            if self.expecting_continue and not self.response_started:
                self.expecting_continue = False
                try:
                    await self._conn.send_continue()
                except ClientDisconnected:
                    self.disconnect()
                    raise
                continue
            with trio.move_on_after(self._settings.body_read_timeout) as timer:
                await self._wait()
            if timer.cancelled_caught and not self._body and not self._body_complete:
                # body_read_timeout: the client stopped sending its body.
                self._fail(408, "the request body did not arrive in time")

    def _take_body(self) -> Message:
        body = self._body
        data = bytes(body[0]) if len(body) == 1 else b"".join(body)
        self._body = []
        self.buffered = 0
        more_body = not self._body_complete
        self._final_body_taken = not more_body
        self._conn.resume_reading()
        return {"type": "http.request", "body": data, "more_body": more_body}

    async def _wait(self) -> None:
        if self._waiter is None:
            self._waiter = trio.Event()
        await self._waiter.wait()

    # -- the ASGI send callable ----------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send ``http.response.start`` or ``http.response.body`` (ASGI HTTP spec 2.5), or
        ``http.response.trailers`` and ``http.response.early_hint`` (``extensions.py``).

        The response head is held until the first body message, then written together with
        it. Each body message returns once its bytes are handed to the socket.

        Once the response is complete, the ASGI HTTP spec 2.5 ("Response Body") says "any
        further messages on the channel will be ignored": a response message (another body,
        a second start, trailers, a file) or a stray ``http.disconnect`` (tutorial apps send
        one) is ignored, with one WARNING per request; the response already sent is intact
        and the connection goes on. Before that, ``http.disconnect`` is an error like any
        message type ``send()`` does not take: it is a ``receive`` event (spec 2.5,
        "Disconnect"), and the ASGI spec ("Error Handling") says an event with an unknown
        ``type`` "should raise an exception out of the ``send`` awaitable"; an unknown type
        raises after the response too.

        Raises:
            ClientDisconnected: the connection is closed (an ``OSError``, spec 2.4).
            InvalidMessage: the message is not a dict with a known ``type``, or its keys have
                the wrong types or values.
            UnexpectedMessage: the message is not allowed now (body before start, a second
                start before the response completed, a body longer or shorter than the
                declared ``Content-Length``), or its type is unknown.
        """
        message_type = check_message_type(message)
        if self.response_complete and message_type in _IGNORED_WHEN_COMPLETE:
            self._ignore_late(message_type)
        elif message_type == "http.response.body":
            if not self.response_started:
                raise UnexpectedMessage(
                    "Expected ASGI message 'http.response.start', but got 'http.response.body'."
                )
            if self._trailers and self._trailers.body_done:
                raise UnexpectedMessage(
                    "Unexpected ASGI message 'http.response.body' sent, "
                    "after the last body message (the trailers are due)."
                )
            body, more_body = check_response_body(message)
            await self._send_body(body, more_body)
        elif message_type == "http.response.start":
            if self.response_started:
                raise UnexpectedMessage(
                    "Unexpected ASGI message 'http.response.start' sent, "
                    "after the response had already started."
                )
            status, headers = check_response_start(message)
            if self._conn.transport.broken:
                raise ClientDisconnected("the client closed the connection")
            self._writer = self._conn.response_writer(status, headers)
            self._headers = headers
            self._head_pending = True
            self.response_started = True
            self.status = status
            if message.get("trailers") is not None and check_trailers_flag(message):
                self._trailers = Trailers()
        elif message_type == "http.response.trailers" and (trailers := self._trailers):
            if not self.response_complete and trailers.add(message):  # the last: complete
                assert self._writer is not None  # trailers come after the body
                await self._write(self._writer.end(trailers.fields) if trailers.send else b"", True)
        elif message_type == "http.response.early_hint":
            written = self.response_started and not self._head_pending  # too late for a 1xx
            links = early_hint_links(message, self.request.http_version, written)
            if links is not None:
                await self._conn.send_early_hints(links)
        elif message_type in _FILE_MESSAGES:  # ASGI extensions: Zero Copy Send, Path Send
            if not self.response_started:
                raise UnexpectedMessage(f"ASGI message {message_type!r} sent before its start.")
            await send_file_message(message_type, message, self._head_pending, self._send_body)
        else:
            expected = "'http.response.body'" if self.response_started else "'http.response.start'"
            raise UnexpectedMessage(f"Expected ASGI message {expected}, but got {message_type!r}.")

    def _ignore_late(self, message_type: str) -> None:
        """A message after the response completed: ignored, one WARNING per request."""
        if self._late_message_warned:
            return
        self._late_message_warned = True
        if message_type == "http.disconnect":
            why = "it is a receive event: the server sends it, the app never needs to"
        else:
            why = "the response was complete: further messages are ignored, ASGI HTTP spec"
        error_logger.warning(
            "ASGI app sent %r after its response to %s; ignored (%s)",
            message_type,
            self.describe(),
            why,
        )

    async def _send_body(self, body: bytes, more_body: bool, file: FileRange | None = None) -> None:
        """Write ``body``, or the ``file`` range by the transport's ``sendfile`` (files.py),
        after the head if it is held; a file that is the whole body sets Content-Length."""
        conn = self._conn
        if conn.transport.broken:
            raise ClientDisconnected("the client closed the connection")
        writer = self._writer
        assert writer is not None  # response_started
        head = b""
        if self._head_pending:
            headers = self._headers
            if file is not None:
                headers = with_file_length(headers, self.status, file.count, more_body)
            if headers is not self._headers or (conn.closing and writer.keep_alive):
                # A file's length, or shutdown began while the head was held: say so.
                writer = self._writer = conn.response_writer(self.status, headers)
            head = writer.head
        complete = not more_body
        tail = b""  # what follows a file's bytes and ends the body
        try:
            if file is None:
                data = head + writer.body(body) if body else head
            else:
                before, tail = writer.frame_around(file.count)
                data = head + before
            if complete:
                trailers = self._trailers  # then the last trailers complete the response
                if trailers is None or not trailers.end_body(writer.chunked, self.request.headers):
                    tail += writer.end()
                complete = trailers is None
        except FramingError as exc:
            # The body does not match the declared Content-Length: the response can be
            # neither completed nor replaced, so the connection is aborted once the app
            # returns.
            self.framing_failed = True
            raise UnexpectedMessage(
                f"Response body does not match the declared Content-Length: {exc}"
            ) from None
        if head:
            self._head_pending = False
            conn.response_begun = True
        if file is not None and file.count and not writer.no_body:
            await self._write(data, complete, file, tail)
        else:
            await self._write(data + tail, complete)

    async def _write(
        self, data: bytes, complete: bool, file: FileRange | None = None, tail: bytes = b""
    ) -> None:
        """Write ``data``, then the ``file`` range by the transport's ``sendfile`` and
        ``tail``; ``complete``: it is the end of the response."""
        conn = self._conn
        try:
            if file is not None:
                if data:
                    await conn.transport.write(data)
                data = tail
                if await conn.transport.sendfile(file.fd, file.offset, file.count) < file.count:
                    self.framing_failed = True  # the promised length is not kept: abort
                    raise UnexpectedMessage(f"the file ended before its {file.count} bytes")
            if data:
                await conn.transport.write(data, final=complete)
        except ClientDisconnected:
            self.disconnect()
            raise
        if complete:
            self.response_complete = True
            if self.timeout_at != _NO_LIMIT and not self.disconnected:
                # The response is complete: request_timeout no longer applies, and an app
                # that runs on (background work after its response) is not cut short.
                self.cancel_scope.deadline = math.inf
            self.wake()
            self.log_access(self.status)
            # Synchronous on purpose: an app cancelled inside this send() (a disconnect
            # watcher's nursery, say) must not leave the connection half-way.
            conn.response_done()

    # -- the app task ------------------------------------------------------------------

    async def run_app(self, app: ASGIApp) -> None:
        """The app task's body: ``app(scope, receive, send)`` through the one app boundary
        (:func:`~trio_asgi._app.call_app`), in :attr:`cancel_scope`. A response the app
        left incomplete is replaced by an error response if none of it went out (500, or
        504 when ``request_timeout`` cut it short), else the connection is aborted (ASGI
        HTTP spec: a server answers 500 for an app that fails before responding)."""
        error = await call_app(
            app,
            self.scope,
            self.receive,
            self.send,
            cancel_scope=self.cancel_scope,
            describe=self.describe,
            client=self.client,
        )
        if self.response_complete:
            return
        status = self.replacement_status(error)
        if status is None:
            await self._conn.abort()
        elif await self._conn.replace_response(status):
            self.log_access(status)

    def replacement_status(self, error: Exception | None) -> int | None:
        """The app returned (``error``: what it raised, already logged) without completing
        its response: the status of the error response to send instead (500; 504 if
        ``request_timeout`` cancelled it; or the status a broken request body called for,
        which came first), or None if the response cannot be replaced (part of it is out,
        or the client is gone) and the connection must be aborted. Logs an app that
        returned without an error and without responding, and a request that timed out
        (once, at WARNING: ``Request timed out after 5 s: GET /slow from 127.0.0.1:5000``).
        """
        conn = self._conn
        timed_out = self.timed_out
        gone = self.disconnected or self.protocol_error is not None
        if timed_out:
            error_logger.warning(
                "Request timed out after %g s: %s from %s",
                self._settings.request_timeout,
                self._request_line(),
                format_address(self.client),
            )
        elif error is None and not (gone or self.cancel_scope.cancelled_caught):
            if self.response_started:
                error_logger.error("ASGI callable returned without completing response.")
            else:
                error_logger.error("ASGI callable returned without starting response.")
        if self.disconnected or conn.transport.broken or conn.response_begun or self.framing_failed:
            return None
        if self.protocol_error is not None:
            return self.protocol_error.error_status_hint
        return _GATEWAY_TIMEOUT if timed_out else _INTERNAL_SERVER_ERROR

    def log_access(self, status: int) -> None:
        """One access-log line for this request's response (if the access log is on)."""
        if self._settings.access_log:
            request = self.request
            log_access(
                self.client,
                request.method,
                request.target,
                request.http_version,
                status,
                self.started_at,
            )
