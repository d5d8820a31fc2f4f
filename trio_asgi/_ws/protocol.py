"""WebSocket's wire side over wsproto: socket bytes to ASGI messages, messages to frames.

:class:`WebSocketProtocol` is the message channel an upgraded HTTP/1.1 connection gives the
session (``session.py``, the ASGI state machine above it). It owns the handshake's answer
(through ``handshake.py``), then wsproto's frame protocol (``wsproto.connection.Connection``,
every frame both ways), the reader task, the received messages waiting for the app, the
keepalive pings and the timing of the close handshake. Below it, it uses only
:class:`UpgradedConnection` (bytes, backpressure, a read deadline, the default headers, the
close); above it, it tells the session two things through :class:`ChannelListener`.

wsproto is sans-IO like the HTTP/1.1 parsers: :meth:`WebSocketProtocol._step` turns received
bytes into ASGI events and into the bytes we owe the peer (pongs, close replies),
synchronously; only writing those bytes is awaited.

Limits on what a peer can make the server hold or do (RFC 6455 section 10.4):

- A message is refused with 1009 once it counts more than ``ws_max_size`` bytes (how it
  is counted and joined: ``inbound.py``, ``FRAGMENT_MIN_SIZE``).
- Compressed messages are inflated by ``BudgetedPerMessageDeflate`` (``deflate.py``)
  within what is left of ``ws_max_size``, and wsproto gets at most ``DEFLATE_FEED_SIZE``
  compressed bytes per call, so one call inflates at most ~256 KiB.
- Queued messages: the reader stops parsing (and reading) while ``ws_max_queue`` messages
  wait for the app's ``receive()``, or while those and the message being received hold
  ``ws_max_size`` bytes; bytes already read wait unparsed in ``_inbox`` (at most one read,
  64 KiB, plus ``PENDING_LIMIT``).
- Fairness: parsing runs in steps of at most ``EVENTS_PER_STEP`` wsproto events and
  ``STEP_SIZE`` bytes, with a checkpoint between steps. A read that parses in one step (an
  echo's usual read: one message) costs no extra await.

Close frames this side sends by itself (RFC 6455 section 7.4.1): 1002 for a protocol error,
1007 for invalid UTF-8 (wsproto's reports), 1009 for a message over ``ws_max_size``, 1011
for a missed ping; it echoes a peer's close; 1006 (never sent) is what the app hears when
the TCP connection just dropped. After our close frame the peer has ``CLOSE_TIMEOUT``
seconds to answer it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, Protocol, cast

import trio
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension

from .._errors import ClientDisconnected
from .._logging import error_logger, format_address
from .._types import Message
from .deflate import BudgetedPerMessageDeflate
from .frames import CLOSE_ABNORMAL, CLOSE_INTERNAL_ERROR, CLOSE_TOO_BIG, data_event, data_frame
from .handshake import UpgradeHandshake
from .inbound import TOO_BIG, InboundMessages

if TYPE_CHECKING:
    from .._http.request import RequestHead
    from .._net.transport import Transport
    from .._types import Address
    from .settings import WebSocketSettings

__all__ = ["ChannelListener", "UpgradedConnection", "WebSocketProtocol"]


class UpgradedConnection(Protocol):
    """What the wire side uses of the connection the WebSocket was upgraded on (the
    HTTP/1.1 connection today): its byte transport (read and written directly), the
    reader's backpressure and deadline, its default headers and its close. Declared here
    so this package does not import the HTTP/1.1 one."""

    @property
    def transport(self) -> Transport:
        """The connection's transport (``_net/transport.py``): ``receive_some`` gives
        ``b""`` at EOF, ``write`` raises ClientDisconnected."""

    async def wait_for_resume(self) -> None:
        """Wait until :meth:`resume_reading` is called (backpressure)."""

    def resume_reading(self) -> None:
        """Wake the reader if backpressure had stopped it."""

    def set_read_deadline(self, deadline: float) -> None:
        """Bound the reader: it stops at ``deadline`` (trio time) unless that is later."""

    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The ``Date`` and ``Server`` headers to add to ``headers``."""

    async def close(self) -> None:
        """Close the connection now."""


class ChannelListener(Protocol):
    """What the wire side tells the session above it (``WebSocketSession``)."""

    def closed(self) -> None:
        """No more frames may be sent: our close frame is going out, or the peer closed or
        left."""

    def disconnected(self) -> None:
        """The app's ``websocket.disconnect`` is known now (called once)."""


CLOSE_TIMEOUT: Final = 5.0  # seconds we wait for the peer's close frame after sending ours
PING_CLOSE_TIMEOUT: Final = 1.0  # seconds to try a 1011 close frame on a peer that missed a pong
PENDING_LIMIT: Final = 64 * 1024  # bytes of early frames held until the app accepts (64 KiB)
EVENTS_PER_STEP: Final = 128  # wsproto events parsed between two checkpoints of the reader
STEP_SIZE: Final = 256 * 1024  # bytes (read and inflated) parsed between checkpoints (256 KiB)
DEFLATE_FEED_SIZE: Final = 256  # compressed bytes per wsproto call: <= ~256 KiB inflated


class WebSocketProtocol:
    """One WebSocket's frames over its upgraded connection: the reader, the pings, the
    received messages and the frames and handshake answers the session sends.

    Args:
        conn: the connection the upgrade request arrived on; every byte goes through it.
        request: the upgrade request's parsed head.
        settings: the server's WebSocket settings.
        client: the peer's address, for the log line of a missed ping.

    Raises:
        wsproto.utilities.RemoteProtocolError: the handshake is malformed; its
            ``event_hint`` is the rejection to send
            (see :func:`~trio_asgi._ws.frames.reject_handshake`).

    The session calls :meth:`bind` with itself before anything else.

    Attributes:
        subprotocols: the subprotocols the client offered, in its order.
    """

    _listener: ChannelListener  # set by bind()
    _ws: Connection  # wsproto's frame protocol, set by the accept

    def __init__(
        self,
        conn: UpgradedConnection,
        request: RequestHead,
        settings: WebSocketSettings,
        *,
        client: Address | None,
    ) -> None:
        self._handshake = UpgradeHandshake(request)
        self.subprotocols = self._handshake.subprotocols
        self._conn = conn
        self._client = client
        self._max_size = settings.max_size
        self._ping_interval = settings.ping_interval
        self._ping_timeout = settings.ping_timeout
        self._per_message_deflate = settings.per_message_deflate
        self._ping_scope = trio.CancelScope()
        self._inbound = InboundMessages(settings.max_size, settings.max_queue)
        self._disconnect: Message | None = None
        self._waiter: trio.Event | None = None
        # Bytes read but not yet handed to wsproto: frames that arrived before the app
        # accepted, or that wait while the queue is full or for the next parsing step.
        self._inbox = bytearray()
        self._held = False  # wsproto may hold parsed frames we have not taken yet
        self._parsing = False  # a task is in _drain (the reader, or the app in accept/receive)
        self._accepted = False  # frames are parsed only once the app accepted
        self._inflater: BudgetedPerMessageDeflate | None = None  # once negotiated
        self._reading = True  # False once nothing more can be parsed
        self._pong: trio.Event | None = None
        self._plain_frames = False  # data frames built by data_frame, not wsproto

    def bind(self, listener: ChannelListener) -> None:
        """Tell ``listener`` (the session) when sending ends and the disconnect is known."""
        self._listener = listener

    # -- the reader task -------------------------------------------------------------------

    async def read_frames(self, leftover: bytes) -> None:
        """The reader task, from the upgrade on: socket bytes -> wsproto -> ASGI events.

        Backpressure: it reads nothing while the app has a full queue (see
        ``InboundMessages.full``) or while ``PENDING_LIMIT`` bytes wait for the accept.
        """
        self._inbox += leftover
        conn = self._conn
        queue_full = self._inbound.full
        try:
            while self._reading:
                if self._held or self._inbox:  # a backlog: parse it before reading more
                    if self._accepted and not self._parsing:
                        if not queue_full():
                            await self._drain()
                            continue
                    elif len(self._inbox) < PENDING_LIMIT and not self._held:
                        pass  # not accepted yet (or the app is parsing): read on, up to a limit
                    else:
                        await conn.wait_for_resume()
                        continue
                if queue_full():
                    await conn.wait_for_resume()  # backpressure: the app is behind
                    continue
                data = await conn.transport.receive_some()
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
            queue_full = self._inbound.full
            while self._reading and (self._held or self._inbox) and not queue_full():
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
        inbound = self._inbound
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
                    part = cast("BytesMessage | TextMessage", event)
                    size = inbound.add(part)
                    if size == TOO_BIG:
                        self._too_big(out)
                    else:
                        work += size
                        if part.message_finished:
                            self._wake()
                else:
                    self._on_control(event, out)
                if not self._reading:
                    self._held = False
                    return bytes(out)
                if events_left <= 0 or work >= STEP_SIZE or (inbound.received and inbound.full()):
                    return bytes(out)  # _held stays True: wsproto may have more
            self._held = False
        return bytes(out)

    def _too_big(self, out: bytearray) -> None:
        """Refuse the message in progress with 1009; the rest of it is never parsed."""
        out += self._close_frame(CLOSE_TOO_BIG, "message too big")
        self.set_disconnect(CLOSE_TOO_BIG, "message too big")
        self._stop_parsing()

    def _stop_parsing(self) -> None:
        """Nothing more is parsed: drop the message in progress and the unparsed bytes."""
        self._reading = False
        self._inbound.drop()
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
            self.set_disconnect(code, reason)
            self._listener.closed()
            self._stop_parsing()

    def _lost(self) -> None:
        """The TCP connection ended without a close handshake: 1006 for the app."""
        self._stop_parsing()
        self._listener.closed()
        self.set_disconnect(CLOSE_ABNORMAL, "")

    async def _flush(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self._conn.transport.write(data)
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

    def set_disconnect(self, code: int, reason: str) -> None:
        """Make ``websocket.disconnect`` with ``code`` and ``reason`` what the app hears
        next (the first one set stays) and wake a waiting ``receive()``."""
        if self._disconnect is None:
            self._disconnect = {
                "type": "websocket.disconnect",
                "code": int(code),  # a plain int, not wsproto's CloseReason enum
                "reason": reason,
            }
            self._listener.disconnected()
            self._ping_scope.cancel()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    # -- the ping task ---------------------------------------------------------------------

    # -- the ping task ---------------------------------------------------------------------

    async def keepalive(self) -> None:
        """The ping task: a ping every ``ws_ping_interval`` s; no pong in time -> close 1011.

        The pinging runs in the ping scope, which ends with the reader or the disconnect;
        the close after a missed pong runs outside it, so that cancel cannot cut it short.
        """
        interval = self._ping_interval
        with self._ping_scope:
            while True:
                await trio.sleep(interval)
                self._pong = trio.Event()
                # The timeout covers writing the ping too: a peer that stopped reading
                # leaves an app's send() holding the write lock, and is caught this way.
                with trio.move_on_after(self._ping_timeout):
                    await self._flush(self._ws.send(Ping(payload=os.urandom(4))))
                    await self._pong.wait()
                    continue
                break  # the pong did not come
        if self._ping_scope.cancel_called:
            return  # the session ended first
        error_logger.info(
            "WebSocket peer %s missed its ping; closing", format_address(self._client)
        )
        # A close frame if it can still be written soon; the peer may not be reading at all.
        with trio.move_on_after(PING_CLOSE_TIMEOUT), contextlib.suppress(ClientDisconnected):
            await self.close(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        self.set_disconnect(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
        await self._conn.close()  # also ends a send() stuck on the dead peer

    # -- what the session uses: messages in, frames and handshake answers out ------------

    @property
    def disconnect_known(self) -> bool:
        """The app's ``websocket.disconnect`` is set (:meth:`take` will return it)."""
        return self._disconnect is not None

    def take(self) -> Message | None:
        """The app's next message without waiting: the ``websocket.receive`` messages in
        order, then ``websocket.disconnect`` (a fresh copy on every call); None if there
        is none yet. Taking a message lets a reader held by backpressure go on."""
        inbound = self._inbound
        if inbound.received:
            message, size = inbound.received.popleft()
            inbound.queued_size -= size
            self._conn.resume_reading()
            return message
        if self._disconnect is not None:
            return dict(self._disconnect)
        return None

    def wait(self) -> Awaitable[None]:
        """What ``receive()`` awaits when :meth:`take` gave None: parsing the backlog the
        reader left (the queue was full; in bounded steps), else the next message or the
        disconnect. Returned un-awaited, so ``receive()`` costs no extra coroutine."""
        if (self._held or self._inbox) and self._accepted and not self._parsing:
            return self._drain()
        waiter = self._waiter
        if waiter is None:
            waiter = self._waiter = trio.Event()
        return waiter.wait()

    def frame(self, message: Message) -> bytes:
        """A ``websocket.send`` message's data frame.

        Raises:
            InvalidMessage: the message has the wrong shape (see ``frames.data_event``).
        """
        if self._plain_frames:
            return data_frame(message)
        return self._ws.send(data_event(message))

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the socket.

        Raises:
            ClientDisconnected: the peer is gone (the app hears code 1006).
        """
        try:
            await self._conn.transport.write(data)
        except ClientDisconnected:
            self._lost()
            raise

    async def close(self, code: int, reason: str) -> None:
        """Send our close frame; then the app hears ``websocket.disconnect`` with its code.

        The app is told only once the frame is out, so an app that ends its own tasks on
        the disconnect cannot cancel the frame part-way.

        Raises:
            ClientDisconnected: the peer was gone (the app hears code 1006 instead).
        """
        data = self._close_frame(code, reason)
        self._listener.closed()
        try:
            await self.write(data)
        finally:
            self.set_disconnect(code, reason)  # after _lost()'s 1006, if the write failed

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The 101 response for ``websocket.accept`` (RFC 6455 section 4.2.2), with
        permessage-deflate if enabled and offered; frames are parsed from now on.

        Raises:
            InvalidMessage: wsproto refused the answer (e.g. a subprotocol not offered).
        """
        inflater = BudgetedPerMessageDeflate(self._max_size)
        extensions: list[Extension] = [inflater] if self._per_message_deflate else []
        data, self._ws = self._handshake.accept(
            subprotocol, extensions, self._conn.default_headers(headers) + headers
        )
        self._accepted = True
        if inflater.enabled():
            self._inflater = inflater  # compressed input is fed to wsproto in pieces
        # No extension negotiated (the 101 has no Sec-WebSocket-Extensions): data frames are
        # simple enough to build here (see frames.data_frame), cheaper than through wsproto.
        self._plain_frames = b"\r\nsec-websocket-extensions:" not in data.lower()
        return data

    async def parse_early_frames(self) -> None:
        """After the accept: parse the frames that came before it, within the same limits."""
        if self._inbox:
            await self._drain()

    def refusal(self, status: int, headers: list[tuple[bytes, bytes]], *, has_body: bool) -> bytes:
        """The HTTP response head that refuses the handshake (403, 500, or the app's
        denial response), with the connection's default headers added."""
        headers = self._conn.default_headers(headers) + headers
        return self._handshake.refusal(status, headers, has_body=has_body)

    def refusal_body(self, body: bytes, *, finished: bool) -> bytes:
        """A piece of the denial response's body."""
        return self._handshake.refusal_body(body, finished=finished)

    def stop_reading(self) -> None:
        """Parse nothing more: the handshake was refused."""
        self._reading = False

    async def refuse(self, data: bytes) -> None:
        """Write a refusal (if the peer is still there to read it), then close the stream."""
        with contextlib.suppress(ClientDisconnected):  # gone already: nothing left to refuse
            await self._conn.transport.write(data)
        await self._conn.close()

    async def close_stream(self) -> None:
        """Close the connection's stream now (the end of a denial, or an abort)."""
        await self._conn.close()
