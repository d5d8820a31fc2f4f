"""The reading half of an HTTP/1.1 connection: the reader task, its read phases and their
deadlines, backpressure, and the lingering close.

:class:`HTTP11Reader` holds a connection's state and runs its reader task ("trio-asgi
reader"): transport bytes -> parser, then :meth:`~HTTP11Reader._process_events`, which
:class:`~trio_asgi._h11.connection.HTTP11Connection` (the other half: requests, responses,
keep-alive) implements. Which deadline the read cancel scope has is decided by one named
state, :class:`ReadPhase`; nothing rebuilds it from flags:

- ``IDLE``: between requests, the keep-alive deadline; ``HEAD``: a head is arriving, the
  ``request_header_timeout`` deadline (then 408); ``BUSY``: a request is in progress, no
  deadline (the old one is left stale; when it fires, the reader goes on under a fresh
  scope); ``REFUSED``: a refused request's answer goes out; ``UPGRADED``: a WebSocket
  session reads and sets its own deadlines; ``LINGER``: our FIN is out, the reader drains
  until EOF or ``LINGER_TIMEOUT``; ``CLOSED``.
- The reader stops reading (backpressure) while ``body_buffer_size`` bytes of body, or of
  pipelined requests, wait (:meth:`HTTP11Reader._may_read`).
- After a stall (a stopped process, a paused VM) a deadline can come due in the pass that
  would have seen the client's bytes: they are read without blocking and served
  (:meth:`HTTP11Reader._input_in_time`).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

import trio

from .. import _tasks as tasks
from .._errors import ClientDisconnected
from .._logging import error_logger, format_address
from .._net.transport import Transport
from .._types import Address
from .policy import may_hold_fold

if TYPE_CHECKING:
    from .._http.exchange import RequestCycle
    from .._http.request import RequestHead
    from .._ws.session import WebSocketSession
    from .parsing import RequestParser
    from .settings import HTTP11Settings

__all__ = ["LINGER_TIMEOUT", "HTTP11Reader", "ReadPhase"]

LINGER_TIMEOUT: Final = 2.0  # seconds the reader drains the client after our FIN


class ReadPhase(enum.Enum):
    """What the reader is waiting for, which decides its read scope's deadline."""

    IDLE = "idle"  # between requests: the keep-alive deadline
    HEAD = "head"  # a request head is arriving: the request_header_timeout deadline
    BUSY = "busy"  # a request is in progress: no deadline applies (it is left stale)
    REFUSED = "refused"  # a request is refused: its 4xx goes out, then the lingering close
    UPGRADED = "upgraded"  # a WebSocket session reads: it sets its own deadlines
    LINGER = "linger"  # our FIN is out: drain until EOF or LINGER_TIMEOUT
    CLOSED = "closed"  # the transport is closed


_IDLE: Final = ReadPhase.IDLE
_HEAD: Final = ReadPhase.HEAD
_BUSY: Final = ReadPhase.BUSY
_LINGER: Final = ReadPhase.LINGER
_CLOSED: Final = ReadPhase.CLOSED
_DRAINING_OR_CLOSED: Final = frozenset({ReadPhase.LINGER, ReadPhase.CLOSED})


class HTTP11Reader:
    """A connection's state and its reader task (see the module docstring).

    Args:
        transport: the connection's :class:`~trio_asgi._net.transport.Transport`.
        client: the peer's address, for log lines.
        settings: the server's :class:`~trio_asgi._h11.settings.HTTP11Settings`.
        closing: serve no request after the current one (graceful shutdown has begun).
    """

    __slots__ = (
        "_client_eof",
        "_closing",
        "_cycle",
        "_head_bytes",
        "_maybe_folded",
        "_phase",
        "_read_scope",
        "_reader_done",
        "_reader_wakeup",
        "_request",
        "client",
        "nursery",
        "parser",
        "settings",
        "transport",
        "websocket",
    )

    def __init__(
        self,
        transport: Transport,
        client: Address | None,
        settings: HTTP11Settings,
        *,
        closing: bool,
    ) -> None:
        self.transport = transport
        self.client = client
        self.settings = settings
        self.parser: RequestParser = settings.new_parser(settings.max_header_size)
        self._phase = _IDLE
        self._read_scope = trio.CancelScope()
        self._reader_wakeup: trio.Event | None = None
        self._reader_done = False
        self._client_eof = False
        self._closing = closing  # serve no request after the current one
        self._cycle: RequestCycle | None = None  # the request being answered
        self._request: RequestHead | None = None  # its head (also of a refused request)
        self.websocket: WebSocketSession | None = None  # set once a request upgrades
        # Bytes received toward the next head, and whether a read may hold an obs-fold:
        # when either could matter, the raw head is measured (policy.check_raw_head).
        self._head_bytes = 0
        self._maybe_folded = False
        self.nursery: trio.Nursery  # the connection nursery, set by start_reader()

    # -- what the protocol half implements -------------------------------------------------

    async def _process_events(self) -> None:
        """Hand on every event the parser can give now (HTTP11Connection)."""
        raise NotImplementedError  # pragma: no cover - HTTP11Connection overrides it

    async def _send_error_response(self, status: int) -> None:
        """Answer with ``status`` and close (HTTP11Connection). Raises ClientDisconnected."""
        raise NotImplementedError  # pragma: no cover - HTTP11Connection overrides it

    # -- the reader task -------------------------------------------------------------------

    def start_reader(self, nursery: trio.Nursery, initial: bytes | None = None) -> None:
        """Start serving in ``nursery`` (the connection nursery): the reader task, under the
        keep-alive deadline. ``initial``: the bytes read after :meth:`prelude_scope` (those after
        a PROXY protocol header), parsed first as if the reader had read them."""
        self.nursery = nursery
        if initial is not None:  # after read_prelude(): its scope was used
            self._read_scope = trio.CancelScope()
        self._read_scope.deadline = trio.current_time() + self.settings.keep_alive_timeout
        nursery.start_soon(self._read_loop, initial or None, name=tasks.READER.name)

    def prelude_scope(self, nursery: trio.Nursery, timeout: float) -> trio.CancelScope:
        """The read scope for what is read before the protocol starts (a PROXY protocol
        header), due in ``timeout`` seconds; ``nursery`` is the connection nursery. Graceful
        shutdown ends it as it ends an idle connection's read (a FIN, then at most
        ``LINGER_TIMEOUT`` seconds) and :attr:`closing` is then True. Call
        :meth:`start_reader` with the bytes read after it (``b""`` if none)."""
        self.nursery = nursery
        self._read_scope = trio.CancelScope(deadline=trio.current_time() + timeout)
        return self._read_scope

    async def _read_loop(self, early: bytes | None) -> None:
        # early: bytes to parse before reading, given (initial) or read at once when a timer
        # came due (_input_in_time)
        parser = self.parser
        data: bytes | None
        polled_scope: trio.CancelScope | None = None  # the read scope made for those bytes
        while True:
            with self._read_scope:
                while True:
                    # The last read's bytes are parsed: an idle connection must not hold them.
                    data = None
                    if early is not None:
                        data, early = early, None
                    elif self._phase is not _LINGER and not self._may_read():
                        await self.wait_for_resume()
                        continue
                    elif (readable := self.transport.readable()) is None:
                        data = await self.transport.receive_some()
                    else:
                        # A plain socket: wait in trio's frame, not in one of ours (an idle
                        # keep-alive connection holds this stack, and its locals: few), then
                        # read what is there.
                        try:
                            await readable
                        except trio.ClosedResourceError:
                            data = b""  # closed under the reader
                        else:
                            data = self.transport.read_now()
                            if data is None:
                                continue  # a spurious wakeup
                    if self._phase in _DRAINING_OR_CLOSED:
                        if data and self._phase is _LINGER:
                            continue
                        break
                    if data and self._last_request_received():
                        # RFC 9112 section 9.6: the connection closes after this request's
                        # response, so what follows it is ignored (only its EOF matters).
                        continue
                    parser.receive_data(data)
                    self._head_bytes += len(data)
                    if may_hold_fold(data):
                        self._maybe_folded = True
                    if not data:
                        self._client_eof = True
                        if self._cycle is not None:
                            self._cycle.disconnect()
                    elif data[:1] == b"\x16" and self._phase is _IDLE:
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
                    if not data or (parser.failed and self._phase is not _LINGER):
                        break
                    if self._phase is _IDLE:
                        self._on_head_start()
            if self._read_scope.cancelled_caught and self._phase is _BUSY:
                # The keep-alive (or head) deadline set before this request came due while
                # the app still works on it. No timer runs on a request in progress, so the
                # reader reads on under a fresh scope (setting the deadline to infinity on
                # every request instead would cost two deadline changes per request).
                self._read_scope = trio.CancelScope()
                continue
            if self._read_scope.cancelled_caught and self._read_scope is not polled_scope:
                early = self._input_in_time()
                if early is not None:
                    # Served under the deadline that came due (a head must still complete
                    # with what arrived; a new head's start sets its own), polled once.
                    polled_scope = trio.CancelScope(deadline=self._read_scope.deadline)
                    self._read_scope = polled_scope
                    continue
            break
        self._reader_done = True
        if self._read_scope.cancelled_caught and self._phase is _HEAD:
            await self._head_timed_out()
        if self._phase is _LINGER or self._cycle is None:
            await self.close()

    async def _head_timed_out(self) -> None:
        """request_header_timeout: the head began but did not arrive in time. 408, then a
        lingering close (the client may still be sending: closing on unread bytes would reset
        the connection and lose the 408)."""
        error_logger.debug("Request head timed out from %s", format_address(self.client))
        self._phase = _LINGER
        with trio.move_on_after(LINGER_TIMEOUT):
            try:
                await self._send_error_response(408)
                # Drain only after a FIN: TLS cannot half-close, and its close_notify (on
                # close) is what tells the client to stop; a peer gone has nothing to drain.
                if await self.transport.send_eof():
                    while await self.transport.receive_some():
                        pass
            except ClientDisconnected:
                pass  # the client is gone: nothing left to tell it

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
        socket can be read without blocking; other transports (TLS) close on the timer.
        """
        if self._closing or not (self._phase is _IDLE or self._phase is _HEAD):
            return None  # shutdown, a refused request, or the stream ended
        return self.transport.read_now() or None  # b"": EOF, nothing to serve

    def _on_head_start(self) -> None:
        """The first bytes of a request head arrived: from now on the head has
        ``request_header_timeout`` seconds, whatever the keep-alive timer said."""
        if not self.parser.in_request:
            return
        self._phase = _HEAD
        self._read_scope.deadline = trio.current_time() + self.settings.request_header_timeout

    def _may_read(self) -> bool:
        limit = self.settings.body_buffer_size
        cycle = self._cycle
        if cycle is not None and cycle.buffered >= limit:
            return False
        parser = self.parser
        return not (parser.request_complete and len(parser.trailing_data) >= limit)

    async def wait_for_resume(self) -> None:
        """Wait until :meth:`resume_reading` is called (backpressure)."""
        self._reader_wakeup = trio.Event()
        await self._reader_wakeup.wait()

    def resume_reading(self) -> None:
        """Wake the reader if backpressure had stopped it."""
        if self._reader_wakeup is not None:
            self._reader_wakeup.set()
            self._reader_wakeup = None

    def set_read_deadline(self, deadline: float) -> None:
        """Bound the reader: it stops at ``deadline`` (trio time) unless that is later."""
        self._read_scope.deadline = min(self._read_scope.deadline, deadline)

    def _begin_close(self) -> None:
        """Lingering close: no more requests; FIN goes out (from a short task if it cannot
        go at once) and the reader discards what the client still sends until its EOF or
        ``LINGER_TIMEOUT`` seconds."""
        self._closing = True
        phase = self._phase
        if phase is _LINGER or phase is _CLOSED:
            return
        self._phase = _LINGER
        linger_deadline = trio.current_time() + LINGER_TIMEOUT
        if phase is _IDLE or phase is _HEAD:
            # A live keep-alive or head deadline: whichever comes first ends the drain.
            linger_deadline = min(self._read_scope.deadline, linger_deadline)
        # Otherwise the deadline was the stale one of a request in progress: the drain gets
        # its whole LINGER_TIMEOUT.
        self._read_scope.deadline = linger_deadline
        self.resume_reading()
        sent = None if self._reader_done else self.transport.half_close_now()
        if sent is None:
            self.nursery.start_soon(self._send_fin, name=tasks.CLOSING.name)
        elif not sent:
            self._read_scope.cancel()  # the peer is gone already: nothing to drain

    async def _send_fin(self) -> None:
        if self._reader_done:
            await self.close()  # nothing to drain: close now
        elif not await self.transport.send_eof():
            # The peer is gone, or the transport cannot half-close (TLS): stop reading now.
            self._read_scope.cancel()

    async def close(self) -> None:
        """Close the transport now and stop the reader (idempotent)."""
        if self._phase is _CLOSED:
            return
        self._phase = _CLOSED
        self._read_scope.cancel()
        await self.transport.aclose()
