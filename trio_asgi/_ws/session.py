"""WebSocket over wsproto: the ASGI ``websocket`` scope on an upgraded HTTP/1.1 connection.

When the HTTP/1.1 reader parses a GET that asks for ``Upgrade: websocket`` (and
``Config.ws`` is ``"auto"``), it hands the connection to a :class:`WebSocketSession`. The
session lives in the same connection nursery::

    HTTP11Connection.run()                 connection nursery
    ├── reader task                        the parser up to the upgrade request; then, in the same
    │   (WebSocketSession.read_frames)     task, socket bytes -> wsproto -> websocket.receive
    ├── app task (WebSocketSession.run_app)   app(scope, receive, send), in its cancel scope
    └── ping task (WebSocketSession.keepalive)  after accept, when ws_ping_interval > 0,
                                           inside its own cancel scope (ended with the reader)

wsproto is sans-IO like the HTTP/1.1 parsers: :meth:`WebSocketSession._step` turns received
bytes into ASGI events and into the bytes we owe the peer (pongs, close replies),
synchronously; only writing those bytes is awaited.

Limits on what a peer can make the server hold or do (RFC 6455 section 10.4):

- A message is refused with 1009 once it counts more than ``ws_max_size`` bytes: its
  payload (UTF-8 bytes for text), after decompression, where every frame but a message's
  last counts as at least ``FRAGMENT_MIN_SIZE`` bytes, so a flood of empty fragments
  reaches the limit as the bytes it sends do. Fragments are joined as they arrive, into
  one ``bytearray`` (text as UTF-8), never kept as separate objects.
- Compressed messages are inflated by ``BudgetedPerMessageDeflate`` (``_ws_deflate.py``)
  within what is left of ``ws_max_size``, and wsproto gets at most ``DEFLATE_FEED_SIZE``
  compressed bytes per call, so one call inflates at most ~256 KiB.
- Queued messages: the reader stops parsing (and reading) while ``ws_max_queue`` messages
  wait for the app's ``receive()``, or while those and the message being received hold
  ``ws_max_size`` bytes; bytes already read wait unparsed in ``_inbox`` (at most one read,
  64 KiB, plus ``PENDING_LIMIT``).
- Fairness: parsing runs in steps of at most ``EVENTS_PER_STEP`` wsproto events and
  ``STEP_SIZE`` bytes, with a checkpoint between steps. A read that parses in one step (an
  echo's usual read: one message) costs no extra await. The handshake (101, or the 403 / denial
response) is wsproto's too, so its checks (``Sec-WebSocket-Key``, version 13,
``Connection: upgrade``) give a malformed handshake a 400 or 426 that names what is missing.

Close codes the server sends (RFC 6455 section 7.4.1): 1000 when the app returns without
closing, 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a message over
``ws_max_size``, 1011 for an app exception or a missed ping, 1012 for graceful shutdown.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol, cast

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .. import _tasks as tasks
from .._app import call_app
from .._config import Config
from .._errors import ClientDisconnected, InvalidMessage, UnexpectedMessage
from .._http.messages import check_message_type, check_response_body, check_response_start
from .._http.scope import websocket_scope
from .._logging import error_logger, format_address, log_access
from .._types import Message
from .deflate import BudgetedPerMessageDeflate
from .frames import CLOSE_NORMAL, close_args, data_event, data_frame

if TYPE_CHECKING:
    from .._context import ServerContext
    from .._h11.parsing import RequestHead
    from .._types import Address

__all__ = ["UpgradedConnection", "WebSocketSession"]


class UpgradedConnection(Protocol):
    """What a :class:`WebSocketSession` uses of the connection it was upgraded on (the
    HTTP/1.1 connection today): its addresses and server context, its byte transport
    (``receive_some``, ``write``, the reader's backpressure and deadline), its nursery and
    its close. Declared here so this module does not import the HTTP/1.1 one."""

    config: Config
    context: ServerContext
    client: Address | None
    server: Address | None
    nursery: trio.Nursery
    request_started_at: float

    async def receive_some(self) -> bytes:
        """The next bytes from the client; ``b""`` at EOF."""

    async def write(self, data: bytes, *, final: bool = False) -> None:
        """Hand ``data`` to the socket. Raises ClientDisconnected."""

    async def wait_for_resume(self) -> None:
        """Wait until :meth:`resume_reading` is called (backpressure)."""

    def resume_reading(self) -> None:
        """Wake the reader if backpressure had stopped it."""

    def set_read_deadline(self, deadline: float) -> None:
        """Bound the reader: it stops at ``deadline`` (trio time) unless that is later."""

    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The ``Date`` and ``Server`` headers to add to ``headers``."""

    async def close_stream(self) -> None:
        """Close the connection's stream now."""


CLOSE_TIMEOUT: Final = 5.0  # seconds we wait for the peer's close frame after sending ours
PING_CLOSE_TIMEOUT: Final = 1.0  # seconds to try a 1011 close frame on a peer that missed a pong
PENDING_LIMIT: Final = 64 * 1024  # bytes of early frames held until the app accepts (64 KiB)
EVENTS_PER_STEP: Final = 128  # wsproto events parsed between two checkpoints of the reader
STEP_SIZE: Final = 256 * 1024  # bytes (read and inflated) parsed between checkpoints (256 KiB)
DEFLATE_FEED_SIZE: Final = 256  # compressed bytes per wsproto call: <= ~256 KiB inflated
FRAGMENT_MIN_SIZE: Final = 6  # bytes every frame but a message's last counts as at least
CLOSE_ABNORMAL: Final = 1006  # never sent: reported when the TCP connection just dropped
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_SERVICE_RESTART: Final = 1012


class _Phase(enum.Enum):
    CONNECTING = "connecting"  # waiting for the app's accept, close or denial response
    DENYING = "denying"  # the denial response has started; its body follows
    OPEN = "open"  # accepted: messages flow
    CLOSED = "closed"  # a close frame was sent, the denial finished, or the peer is gone


class WebSocketSession:
    """One WebSocket connection: the handshake, the frames and the app's receive/send.

    Args:
        conn: the HTTP/1.1 connection the upgrade request arrived on; the session writes
            through it (its write lock and broken-pipe handling) and runs in its nursery.
        request: the upgrade request's parsed head.

    Raises:
        wsproto.utilities.RemoteProtocolError: the handshake is malformed; its
            ``event_hint`` is the rejection to send
            (see :func:`~trio_asgi._ws.frames.reject_handshake`).
    """

    def __init__(self, conn: UpgradedConnection, request: RequestHead) -> None:
        self._conn = conn
        self.config = conn.config
        self.request = request
        if request.http_version != b"1.1":
            raise RemoteProtocolError(
                "a WebSocket handshake needs HTTP/1.1 (RFC 6455 section 4.1)",
                RejectConnection(status_code=400),
            )
        self._ws = WSConnection(ConnectionType.SERVER)
        self._ws.initiate_upgrade_connection(list(request.headers), request.target)
        handshake = next(self._ws.events())
        if not isinstance(handshake, Request):  # pragma: no cover - wsproto always gives one
            raise RemoteProtocolError("no WebSocket handshake request", RejectConnection())
        self.scope = websocket_scope(
            target=request.target,
            headers=list(request.headers),
            subprotocols=list(handshake.subprotocols),
            scheme="ws",
            client=conn.client,
            server=conn.server,
            root_path=self.config.root_path,
            state=conn.context.state,
        )
        self.cancel_scope = trio.CancelScope()  # the app task's
        self._ping_scope = trio.CancelScope()
        self._phase = _Phase.CONNECTING
        self._connect_sent = False
        self._received: deque[tuple[Message, int]] = deque()  # (message, its counted size)
        self._queued_size = 0  # bytes of the messages in _received
        self._disconnect: Message | None = None
        self._waiter: trio.Event | None = None
        # Bytes read but not yet handed to wsproto: frames that arrived before the app
        # accepted, or that wait while the queue is full or for the next parsing step.
        self._inbox = bytearray()
        self._held = False  # wsproto may hold parsed frames we have not taken yet
        self._parsing = False  # a task is in _drain (the reader, or the app in accept/receive)
        self._accepted = False  # frames are parsed only once the app accepted
        self._inflater: BudgetedPerMessageDeflate | None = None  # once negotiated
        self._fragments: bytearray | None = None  # the message so far (text as UTF-8)
        self._message_size = 0  # counted bytes of the message in progress
        self._frame_size = 0  # payload bytes of the frame in progress
        self._reading = True  # False once nothing more can be parsed
        self._pong: trio.Event | None = None
        self._shutting_down = False
        self._plain_frames = False  # data frames built by data_frame, not wsproto

    # -- the reader task -------------------------------------------------------------------

    async def read_frames(self, leftover: bytes) -> None:
        """The reader task, from the upgrade on: socket bytes -> wsproto -> ASGI events.

        Backpressure: it reads nothing while the app has a full queue (see
        :meth:`_queue_full`) or while ``PENDING_LIMIT`` bytes wait for the accept.
        """
        self._inbox += leftover
        conn = self._conn
        try:
            while self._reading:
                if self._held or self._inbox:  # a backlog: parse it before reading more
                    if self._accepted and not self._parsing:
                        if not self._queue_full():
                            await self._drain()
                            continue
                    elif len(self._inbox) < PENDING_LIMIT and not self._held:
                        pass  # not accepted yet (or the app is parsing): read on, up to a limit
                    else:
                        await conn.wait_for_resume()
                        continue
                if self._queue_full():
                    await conn.wait_for_resume()  # backpressure: the app is behind
                    continue
                data = await conn.receive_some()
                if not data:
                    self._lost()
                    return
                if not self._accepted or self._parsing or self._inbox:
                    self._inbox += data  # parsed once accepted, or after what came before
                elif self._inflater is not None and len(data) > DEFLATE_FEED_SIZE:
                    self._inbox += data  # inflated in bounded pieces by _drain
                else:
                    # The hot path: the read usually parses in this one step, with no
                    # checkpoint but the write; if not, the backlog branch above goes on.
                    await self._flush(self._step(data))
        finally:
            self._ping_scope.cancel()

    def _queue_full(self) -> bool:
        """Whether parsing waits for the app: ``ws_max_queue`` messages wait for it, or the
        waiting messages and the one being received hold ``ws_max_size`` bytes.

        With nothing queued, the message in progress may grow to ``ws_max_size`` (the app
        has nothing to take); so a connection holds at most about ``2 * ws_max_size`` bytes
        of messages, the copy that ends a fragmented message included.
        """
        queued = self._queued_size
        return len(self._received) >= self.config.ws_max_queue or (
            queued > 0 and queued + self._message_size >= self.config.ws_max_size
        )

    async def _drain(self) -> None:
        """Parse the backlog (``_inbox`` and what wsproto holds) in bounded steps.

        A checkpoint before each step lets other tasks run; it stops when the backlog is
        parsed, the queue is full or reading has ended. One task at a time: the reader, or
        the app task in accept (frames that came early) or in ``receive()`` (a backlog the
        reader left while the queue was full).
        """
        if self._parsing:
            return
        self._parsing = True
        try:
            while self._reading and (self._held or self._inbox) and not self._queue_full():
                await trio.lowlevel.checkpoint()
                if not self._reading:
                    break  # ended meanwhile (the peer left, a ping timeout)
                await self._flush(self._step(None))
        finally:
            self._parsing = False
            self._conn.resume_reading()

    def _step(self, data: bytes | None) -> bytes:
        """One bounded parsing step: ``data`` (else the backlog) -> wsproto -> ASGI events.

        A step ends after ``EVENTS_PER_STEP`` events or ``STEP_SIZE`` bytes, once the queue
        is full, or when the input is parsed; with permessage-deflate, wsproto is fed at
        most ``DEFLATE_FEED_SIZE`` compressed bytes at a time. Events wsproto still holds
        are taken by the next step (``_held``).

        Returns:
            the bytes we owe the peer (pongs, our close frame).
        """
        ws = self._ws
        out = bytearray()
        events_left = EVENTS_PER_STEP
        work = 0
        if data is not None:
            ws.receive_data(data)
            self._held = True
            work = len(data)
        while True:
            if not self._held:
                inbox = self._inbox
                if not inbox or work >= STEP_SIZE:
                    break
                size = DEFLATE_FEED_SIZE if self._inflater is not None else len(inbox)
                piece = bytes(inbox[:size])
                del inbox[:size]
                ws.receive_data(piece)
                self._held = True
                work += len(piece)
            for event in ws.events():
                events_left -= 1
                event_type = type(event)
                # type() first: wsproto's events are ABCs, and isinstance() on them is slow.
                if event_type is BytesMessage or event_type is TextMessage:
                    work += self._on_data(cast("BytesMessage | TextMessage", event), out)
                else:
                    self._on_control(event, out)
                if not self._reading:
                    self._held = False
                    return bytes(out)
                if events_left <= 0 or work >= STEP_SIZE or (self._received and self._queue_full()):
                    return bytes(out)  # _held stays True: wsproto may have more
            self._held = False
        return bytes(out)

    def _on_data(self, event: BytesMessage | TextMessage, out: bytearray) -> int:
        """Count and join one piece of a data message; deliver it when it is complete.

        Returns:
            the piece's size in bytes (UTF-8 for text).
        """
        data = event.data
        if type(data) is str:
            text = True
            size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        else:
            text = False
            size = len(data)
        counted = self._message_size + size
        if not event.frame_finished:
            self._frame_size += size
        elif not event.message_finished:
            # A fragment: it counts as at least FRAGMENT_MIN_SIZE bytes, so a flood of
            # empty or tiny fragments reaches ws_max_size as the bytes it sends do.
            frame_size = self._frame_size + size
            if frame_size < FRAGMENT_MIN_SIZE:
                counted += FRAGMENT_MIN_SIZE - frame_size
            self._frame_size = 0
        if counted > self.config.ws_max_size:
            self._too_big(out)
            return size
        fragments = self._fragments
        if event.message_finished:
            message: str | bytes | bytearray
            if fragments is None:  # a message in one piece: no copy, no join
                message = data
            elif text:
                fragments += cast(str, data).encode("utf-8")
                message = fragments.decode("utf-8")  # wsproto checked it, piece by piece
            else:
                fragments += cast(bytes, data)
                message = bytes(fragments)
            self._fragments = None
            self._message_size = 0
            self._frame_size = 0
            key = "text" if text else "bytes"
            self._received.append(({"type": "websocket.receive", key: message}, counted))
            self._queued_size += counted
            self._wake()
        else:
            # Joined as they arrive. Text as UTF-8: a str may take 4 bytes a character.
            if fragments is None:
                fragments = self._fragments = bytearray()
            fragments += cast(str, data).encode("utf-8") if text else cast(bytes, data)
            self._message_size = counted
        return size

    def _too_big(self, out: bytearray) -> None:
        """Refuse the message in progress with 1009; the rest of it is never parsed."""
        out += self._close_frame(CLOSE_TOO_BIG, "message too big")
        self._set_disconnect(CLOSE_TOO_BIG, "message too big")
        self._stop_parsing()

    def _stop_parsing(self) -> None:
        """Nothing more is parsed: drop the message in progress and the unparsed bytes."""
        self._reading = False
        self._fragments = None
        self._inbox.clear()

    def _on_control(self, event: object, out: bytearray) -> None:
        """A ping, pong or close (wsproto's own report of a parse failure included)."""
        ws = self._ws
        if isinstance(event, Ping):
            if ws.state is ConnectionState.OPEN:  # no pong after our close frame (wsproto's rule)
                out += ws.send(event.response())
        elif isinstance(event, Pong):
            if self._pong is not None:
                self._pong.set()
        elif isinstance(event, CloseConnection):
            code, reason = event.code, event.reason or ""
            if ws.state is ConnectionState.OPEN:
                # wsproto's report of a parse failure (1002, 1007, the inflater's 1009): we close.
                if code == CLOSE_TOO_BIG:
                    reason = "message too big"
                out += self._close_frame(code, reason)
            elif ws.state is ConnectionState.REMOTE_CLOSING:
                out += ws.send(event.response())  # the peer closed first: echo
            # else: the reply to our close frame: the close handshake is complete
            self._set_disconnect(code, reason)
            self._phase = _Phase.CLOSED
            self._stop_parsing()

    def _lost(self) -> None:
        """The TCP connection ended without a close handshake: 1006 for the app."""
        self._stop_parsing()
        if self._phase is not _Phase.CLOSED:
            self._phase = _Phase.CLOSED
        self._set_disconnect(CLOSE_ABNORMAL, "")

    async def _flush(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self._conn.write(data)
        except ClientDisconnected:
            self._lost()

    def _close_frame(self, code: int, reason: str) -> bytes:
        """Our close frame, and a bound on how long we wait for the peer's reply."""
        self._conn.set_read_deadline(trio.current_time() + CLOSE_TIMEOUT)
        if self._ws.state is not ConnectionState.OPEN and (
            self._ws.state is not ConnectionState.REMOTE_CLOSING
        ):
            return b""
        return self._ws.send(CloseConnection(code=code, reason=reason))

    def _set_disconnect(self, code: int, reason: str) -> None:
        if self._disconnect is None:
            self._disconnect = {
                "type": "websocket.disconnect",
                "code": int(code),  # a plain int, not wsproto's CloseReason enum
                "reason": reason,
            }
            grace = trio.current_time() + self.config.disconnect_timeout
            self.cancel_scope.deadline = min(self.cancel_scope.deadline, grace)
            self._ping_scope.cancel()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    # -- the ping task ---------------------------------------------------------------------

    async def keepalive(self) -> None:
        """The ping task: a ping every ``ws_ping_interval`` s; no pong in time -> close 1011.

        The pinging runs in the ping scope, which the session cancels when it ends; the
        close after a missed pong runs outside it, so that cancel cannot cut it short.
        """
        interval = self.config.ws_ping_interval
        with self._ping_scope:
            while True:
                await trio.sleep(interval)
                self._pong = trio.Event()
                # The timeout covers writing the ping too: a peer that stopped reading
                # leaves an app's send() holding the write lock, and is caught this way.
                with trio.move_on_after(self.config.ws_ping_timeout):
                    await self._flush(self._ws.send(Ping(payload=os.urandom(4))))
                    await self._pong.wait()
                    continue
                break  # the pong did not come
        if self._ping_scope.cancel_called:
            return  # the session ended first
        error_logger.info(
            "WebSocket peer %s missed its ping; closing", format_address(self._conn.client)
        )
        # A close frame if it can still be written soon; the peer may not be reading at all.
        with trio.move_on_after(PING_CLOSE_TIMEOUT), contextlib.suppress(ClientDisconnected):
            await self._close(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        self._set_disconnect(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        await self._conn.close_stream()  # also ends a send() stuck on the dead peer

    def begin_shutdown(self) -> None:
        """Graceful shutdown: an open WebSocket gets close 1012 and the app a disconnect.

        One still in its handshake gets the same as soon as the app accepts it.
        """
        self._shutting_down = True
        if self._phase is _Phase.OPEN:
            self._conn.nursery.start_soon(self._close_for_shutdown, name=tasks.CLOSING.name)

    async def _close_for_shutdown(self) -> None:
        if self._phase is _Phase.OPEN:
            with contextlib.suppress(ClientDisconnected):
                await self._close(CLOSE_SERVICE_RESTART, "server shutting down")

    async def _close(self, code: int, reason: str) -> None:
        """Send our close frame; then the app hears ``websocket.disconnect`` with its code.

        The app is told only once the frame is out, so an app that ends its own tasks on
        the disconnect cannot cancel the frame part-way.

        Raises:
            ClientDisconnected: the peer was gone (the app hears code 1006 instead).
        """
        data = self._close_frame(code, reason)
        self._phase = _Phase.CLOSED
        try:
            await self._write(data)
        finally:
            self._set_disconnect(code, reason)  # after _lost()'s 1006, if the write failed

    # -- the app task ----------------------------------------------------------------------

    def describe(self) -> str:
        """The handshake for a log line: ``WebSocket "/path"``."""
        return f'WebSocket "{self.request.target.decode("ascii", "replace")}"'

    async def run_app(self) -> None:
        """The app task: ``app(scope, receive, send)``, then whatever the app left undone."""
        error = await call_app(
            self._conn.context.app,
            self.scope,
            self.receive,
            self.send,
            cancel_scope=self.cancel_scope,
            describe=self.describe,
            client=self._conn.client,
        )
        phase = self._phase
        if phase is _Phase.CONNECTING:
            if error is None and self._disconnect is None:
                error_logger.error("ASGI callable returned without sending handshake.")
            await self._reject(500)
        elif phase is _Phase.DENYING:
            await self._conn.close_stream()  # a half-sent denial response: abort
        elif phase is _Phase.OPEN:
            with contextlib.suppress(ClientDisconnected):
                await self._close(CLOSE_NORMAL if error is None else CLOSE_INTERNAL_ERROR, "")
        # The stream is the reader's to close: it may still owe the peer a close frame.

    async def receive(self) -> Message:
        """The next ASGI WebSocket event (ASGI WebSocket spec 2.5).

        ``websocket.connect`` first; then ``websocket.receive`` messages in order; then
        ``websocket.disconnect`` with the close ``code`` and ``reason``, on every call and
        without a checkpoint once known. Backpressure: when ``ws_max_queue`` messages, or
        messages of ``ws_max_size`` bytes in all, wait here, the reader stops reading the
        socket.
        """
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            if self._received:
                message, size = self._received.popleft()
                self._queued_size -= size
                self._conn.resume_reading()
                return message
            if self._disconnect is not None:
                return dict(self._disconnect)
            if (self._held or self._inbox) and self._accepted and not self._parsing:
                # The reader left a backlog (the queue was full) and may be waiting on the
                # socket now: parse it here, in bounded steps.
                await self._drain()
                continue
            if self._waiter is None:
                self._waiter = trio.Event()
            await self._waiter.wait()

    async def send(self, message: Message) -> None:
        """Send ``websocket.accept``/``send``/``close`` or the denial response messages.

        Raises:
            ClientDisconnected: the connection is closed (an ``OSError``, spec 2.4).
            InvalidMessage: the message has the wrong shape (e.g. both ``text`` and
                ``bytes``, a ``code`` that is not an int).
            UnexpectedMessage: the message is not allowed now (e.g. ``websocket.send``
                before ``websocket.accept``).
        """
        message_type = check_message_type(message)
        phase = self._phase
        if phase is _Phase.OPEN:
            if message_type == "websocket.send":
                if self._plain_frames:
                    await self._write(data_frame(message))
                else:
                    await self._write(self._ws.send(data_event(message)))
            elif message_type == "websocket.close":
                await self._close(*close_args(message))
            else:
                raise UnexpectedMessage(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got {message_type!r}."
                )
        elif phase is _Phase.CONNECTING:
            if self._disconnect is not None:
                raise ClientDisconnected("the client closed the connection")
            if message_type == "websocket.accept":
                await self._accept(message)
            elif message_type == "websocket.close":
                close_args(message)  # validated, though a 403 carries no close code
                await self._reject(403)
            elif message_type == "websocket.http.response.start":
                await self._start_denial(message)
            else:
                raise UnexpectedMessage(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got {message_type!r}."
                )
        elif phase is _Phase.DENYING:
            if message_type != "websocket.http.response.body":
                raise UnexpectedMessage(
                    "Expected ASGI message 'websocket.http.response.body', "
                    f"but got {message_type!r}."
                )
            body, more_body = check_response_body(message)
            data = self._ws.send(RejectData(data=body, body_finished=not more_body))
            if not more_body:
                self._phase = _Phase.CLOSED
                self._set_disconnect(CLOSE_NORMAL, "")
            await self._write(data)
            if not more_body:
                self._reading = False
                await self._conn.close_stream()
        else:
            raise ClientDisconnected("the WebSocket is closed")

    async def _write(self, data: bytes) -> None:
        try:
            await self._conn.write(data)
        except ClientDisconnected:
            self._lost()
            raise

    async def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise InvalidMessage(
                f"'websocket.accept' 'subprotocol' must be a str or None, not {subprotocol!r}"
            )
        _, headers = check_response_start({"type": "websocket.accept", "status": 200, **message})
        if any(name.lower() == b"sec-websocket-protocol" for name, _ in headers):
            raise InvalidMessage(
                "'websocket.accept' headers must not include Sec-WebSocket-Protocol; "
                "use the 'subprotocol' key"
            )
        inflater = BudgetedPerMessageDeflate(self.config.ws_max_size)
        extensions: list[Extension] = [inflater] if self.config.ws_per_message_deflate else []
        try:
            data = self._ws.send(
                AcceptConnection(
                    subprotocol=subprotocol,
                    extensions=extensions,
                    extra_headers=self._conn.default_headers(headers) + headers,
                )
            )
        except LocalProtocolError as exc:
            raise InvalidMessage(f"'websocket.accept' was refused: {exc}") from None
        self._phase = _Phase.OPEN
        self._accepted = True
        if inflater.enabled():
            self._inflater = inflater  # compressed input is fed to wsproto in pieces
        # No extension negotiated (the 101 has no Sec-WebSocket-Extensions): data frames are
        # simple enough to build here (see _ws_frames.data_frame), cheaper than through wsproto.
        self._plain_frames = b"\r\nsec-websocket-extensions:" not in data.lower()
        self._log(101)
        await self._write(data)
        if self.config.ws_ping_interval > 0:
            self._conn.nursery.start_soon(self.keepalive, name=tasks.WEBSOCKET_KEEPALIVE.name)
        if self._inbox:
            await self._drain()  # frames that came before the accept, within the same limits
        if self._shutting_down or self._conn.context.shutting_down:
            self._conn.nursery.start_soon(self._close_for_shutdown, name=tasks.CLOSING.name)

    async def _reject(self, status: int) -> None:
        """Refuse the handshake with a plain HTTP ``status`` and close."""
        self._phase = _Phase.CLOSED
        self._set_disconnect(CLOSE_ABNORMAL, "")
        self._reading = False
        self._log(status)
        headers = self._conn.default_headers([])
        with contextlib.suppress(ClientDisconnected):  # gone already: nothing left to refuse
            await self._conn.write(
                self._ws.send(RejectConnection(status_code=status, headers=headers))
            )
        await self._conn.close_stream()

    async def _start_denial(self, message: Message) -> None:
        status, headers = check_response_start(message)
        data = self._ws.send(
            RejectConnection(
                status_code=status,
                headers=self._conn.default_headers(headers) + headers,
                has_body=True,
            )
        )
        self._phase = _Phase.DENYING
        self._log(status)
        await self._write(data)

    def _log(self, status: int) -> None:
        if self.config.access_log:
            request = self.request
            log_access(
                self._conn.client,
                request.method,
                request.target,
                request.http_version,
                status,
                self._conn.request_started_at,
            )
