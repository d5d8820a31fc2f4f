"""WebSocket's ASGI side: the ``websocket`` scope's state machine, between the app and a
narrow message channel.

When the HTTP/1.1 reader parses a GET that asks for ``Upgrade: websocket`` (and
``Config.ws`` is ``"auto"``), it builds the wire side (``WebSocketProtocol``, which checks
the handshake) and a :class:`WebSocketSession` over it. Both live in the same connection
nursery::

    HTTP11Connection.run()                 connection nursery
    ├── reader task                        the parser up to the upgrade request; then, in the
    │   (WebSocketProtocol.read_frames)    same task, socket bytes -> wsproto -> websocket.receive
    ├── app task (WebSocketSession.run_app)   app(scope, receive, send), in its cancel scope
    ├── ping task                          after accept, when ws_ping_interval > 0, inside the
    │   (WebSocketProtocol.keepalive)      protocol's ping scope (ended by the reader's end or
    │                                      the disconnect)
    └── closing task                       graceful shutdown of an open WebSocket: close 1012
        (WebSocketSession._close_for_shutdown)

Who does what in ``_ws/``: each part calls down through the interface named; the one call
up is the wire side telling the session, through ``ChannelListener``, that sending has ended
or the disconnect is known::

    session.py     WebSocketSession: phases, receive/send, the app call, close codes (ASGI)
      │  MessageChannel (declared here)         ▲ ChannelListener: closed(), disconnected()
      ▼                                         │
    protocol.py    WebSocketProtocol: the reader, frames out, pings, close-handshake timing
      ├── inbound.py    InboundMessages: data frames -> queued messages, within limits
      ├── handshake.py  UpgradeHandshake: the HTTP/1.1 handshake's checks and answers
      ├── deflate.py    BudgetedPerMessageDeflate: permessage-deflate within ws_max_size
      └── frames.py     messages -> frames, close codes (the session's too), the
                        malformed-handshake answer
      │  UpgradedConnection (declared in protocol.py)
      ▼
    the HTTP/1.1 connection: bytes, backpressure, the read deadline, default headers, close
    settings.py    WebSocketSettings: the few Config values the two classes read

The session never touches bytes or wsproto, so an HTTP/2 stream (RFC 8441) could carry it
with another channel. Phases (:class:`_Phase`): CONNECTING, then OPEN (accepted) or
DENYING (the denial response's body follows), then CLOSED.

Close codes the server sends (RFC 6455 section 7.4.1): 1000 when the app returns without
closing, 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a message over
``ws_max_size``, 1011 for an app exception or a missed ping, 1012 for graceful shutdown.
1000, 1011 for an app exception and 1012 are decided here; the others by the wire side.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .. import _tasks as tasks
from .._app import call_app
from .._errors import ClientDisconnected, InvalidMessage, UnexpectedMessage
from .._http.messages import check_message_type, check_response_body, check_response_start
from .._http.scope import websocket_scope
from .._logging import error_logger, log_access
from .._types import ASGIApp, Message
from .frames import (
    CLOSE_ABNORMAL,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_SERVICE_RESTART,
    close_args,
)

if TYPE_CHECKING:
    from .._http.request import RequestHead
    from .._types import Address
    from .protocol import ChannelListener
    from .settings import WebSocketSettings

__all__ = ["MessageChannel", "WebSocketSession"]

Headers = list[tuple[bytes, bytes]]


class MessageChannel(Protocol):
    """What the session uses of the wire side below it (``protocol.WebSocketProtocol`` on
    an upgraded HTTP/1.1 connection): received messages, frames and handshake answers."""

    subprotocols: list[str]  # offered by the client, in its order

    @property
    def disconnect_known(self) -> bool:
        """The app's ``websocket.disconnect`` is set."""

    def bind(self, listener: ChannelListener) -> None:
        """Report the end of sending and the disconnect to ``listener``."""

    async def read_frames(self, leftover: bytes) -> None:
        """The reader task, from the upgrade on."""

    async def keepalive(self) -> None:
        """The ping task."""

    def take(self) -> Message | None:
        """The app's next message if there is one (``websocket.receive``, then
        ``websocket.disconnect`` on every call), else None."""

    def wait(self) -> Awaitable[None]:
        """Something to await before :meth:`take` may have more."""

    def frame(self, message: Message) -> bytes:
        """A ``websocket.send`` message's frame. Raises InvalidMessage."""

    async def write(self, data: bytes) -> None:
        """Send ``data``. Raises ClientDisconnected."""

    async def close(self, code: int, reason: str) -> None:
        """Send our close frame, then set the disconnect. Raises ClientDisconnected."""

    def accept(self, subprotocol: str | None, headers: Headers) -> bytes:
        """The answer that accepts the handshake. Raises InvalidMessage."""

    async def parse_early_frames(self) -> None:
        """Parse the frames that came before the accept."""

    def refusal(self, status: int, headers: Headers, *, has_body: bool) -> bytes:
        """The response head that refuses the handshake."""

    def refusal_body(self, body: bytes, *, finished: bool) -> bytes:
        """A piece of the refusal's body."""

    def stop_reading(self) -> None:
        """Parse nothing more."""

    async def refuse(self, data: bytes) -> None:
        """Write a refusal if the peer is still there, then close."""

    async def close_stream(self) -> None:
        """Close the connection now."""

    def set_disconnect(self, code: int, reason: str) -> None:
        """Set the app's ``websocket.disconnect`` (the first one set stays)."""


class _Phase(enum.Enum):
    CONNECTING = "connecting"  # waiting for the app's accept, close or denial response
    DENYING = "denying"  # the denial response has started; its body follows
    OPEN = "open"  # accepted: messages flow
    CLOSED = "closed"  # a close frame was sent, the denial finished, or the peer is gone


class WebSocketSession:
    """One WebSocket's ASGI side: the scope, and the app's receive/send over ``channel``.

    Args:
        channel: the wire side; it checked the handshake already.
        request: the upgrade request's parsed head (the scope, the log lines).
        settings: the server's WebSocket settings.
        app: the ASGI 3 application.
        state: the lifespan state; the scope gets a shallow copy.
        client: the client's address (the peer's, or the one a trusted proxy gave); server:
            ours (``scope["client"]``, ``["server"]``; the access log names ``client``).
        scheme: ``scope["scheme"]``, ``"ws"`` or ``"wss"`` (TLS, or a trusted proxy's word).
        root_path: ``scope["root_path"]`` (the configured one, or a trusted proxy's prefix).
        started_at: ``time.perf_counter()`` when the request began (the access log).
        tasks: where the ping and closing tasks start (the connection's nursery).
        shutting_down: whether the server's graceful shutdown has begun.
    """

    def __init__(
        self,
        channel: MessageChannel,
        request: RequestHead,
        *,
        settings: WebSocketSettings,
        app: ASGIApp,
        state: dict[str, Any],
        client: Address | None,
        server: Address | None,
        scheme: str,
        root_path: str,
        started_at: float,
        tasks: trio.Nursery,
        shutting_down: Callable[[], bool],
        tls: Mapping[str, object] | None = None,
    ) -> None:
        self._channel = channel
        self.request = request
        self.scope = websocket_scope(
            target=request.target,
            headers=list(request.headers),
            subprotocols=list(channel.subprotocols),
            scheme=scheme,
            client=client,
            server=server,
            root_path=root_path,
            state=state,
            tls=tls,
        )
        self.cancel_scope = trio.CancelScope()  # the app task's
        self._app = app
        self._client = client
        self._started_at = started_at
        self._tasks = tasks
        self._server_shutting_down = shutting_down
        self._disconnect_timeout = settings.disconnect_timeout
        self._pinging = settings.ping_interval > 0
        self._access_log = settings.access_log
        self._phase = _Phase.CONNECTING
        self._connect_sent = False
        self._shutting_down = False
        channel.bind(self)

    async def read_frames(self, leftover: bytes) -> None:
        """The reader task from the upgrade on: the channel's (``leftover``: bytes read
        after the upgrade request)."""
        await self._channel.read_frames(leftover)

    # -- what the channel tells us (ChannelListener) ---------------------------------------

    def closed(self) -> None:
        """No more frames may be sent."""
        self._phase = _Phase.CLOSED

    def disconnected(self) -> None:
        """The disconnect is known: the app has ``disconnect_timeout`` s more to finish."""
        grace = trio.current_time() + self._disconnect_timeout
        self.cancel_scope.deadline = min(self.cancel_scope.deadline, grace)

    # -- shutdown --------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Graceful shutdown: an open WebSocket gets close 1012 and the app a disconnect.

        One still in its handshake gets the same as soon as the app accepts it.
        """
        self._shutting_down = True
        if self._phase is _Phase.OPEN:
            self._tasks.start_soon(self._close_for_shutdown, name=tasks.CLOSING.name)

    async def _close_for_shutdown(self) -> None:
        if self._phase is _Phase.OPEN:
            with contextlib.suppress(ClientDisconnected):
                await self._channel.close(CLOSE_SERVICE_RESTART, "server shutting down")

    # -- the app task ----------------------------------------------------------------------

    def describe(self) -> str:
        """The handshake for a log line: ``WebSocket "/path"``."""
        return f'WebSocket "{self.request.target.decode("ascii", "replace")}"'

    async def run_app(self) -> None:
        """The app task: ``app(scope, receive, send)``, then whatever the app left undone."""
        error = await call_app(
            self._app,
            self.scope,
            self.receive,
            self.send,
            cancel_scope=self.cancel_scope,
            describe=self.describe,
            client=self._client,
        )
        phase = self._phase
        if phase is _Phase.CONNECTING:
            if error is None and not self._channel.disconnect_known:
                error_logger.error("ASGI callable returned without sending handshake.")
            await self._reject(500)
        elif phase is _Phase.DENYING:
            await self._channel.close_stream()  # a half-sent denial response: abort
        elif phase is _Phase.OPEN:
            code = CLOSE_NORMAL if error is None else CLOSE_INTERNAL_ERROR
            with contextlib.suppress(ClientDisconnected):
                await self._channel.close(code, "")
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
        channel = self._channel
        while True:
            message = channel.take()
            if message is not None:
                return message
            await channel.wait()

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
                channel = self._channel
                await channel.write(channel.frame(message))
            elif message_type == "websocket.close":
                await self._channel.close(*close_args(message))
            else:
                raise UnexpectedMessage(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got {message_type!r}."
                )
        elif phase is _Phase.CONNECTING:
            if self._channel.disconnect_known:
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
            channel = self._channel
            data = channel.refusal_body(body, finished=not more_body)
            if not more_body:
                self._phase = _Phase.CLOSED
                channel.set_disconnect(CLOSE_NORMAL, "")
            await channel.write(data)
            if not more_body:
                channel.stop_reading()
                await channel.close_stream()
        else:
            raise ClientDisconnected("the WebSocket is closed")

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
        channel = self._channel
        data = channel.accept(subprotocol, headers)
        self._phase = _Phase.OPEN
        self._log(101)
        await channel.write(data)
        if self._pinging:
            self._tasks.start_soon(channel.keepalive, name=tasks.WEBSOCKET_KEEPALIVE.name)
        await channel.parse_early_frames()  # within the same limits as any frame
        if self._shutting_down or self._server_shutting_down():
            self._tasks.start_soon(self._close_for_shutdown, name=tasks.CLOSING.name)

    async def _reject(self, status: int) -> None:
        """Refuse the handshake with a plain HTTP ``status`` and close."""
        channel = self._channel
        self._phase = _Phase.CLOSED
        channel.set_disconnect(CLOSE_ABNORMAL, "")
        channel.stop_reading()
        self._log(status)
        await channel.refuse(channel.refusal(status, [], has_body=False))

    async def _start_denial(self, message: Message) -> None:
        status, headers = check_response_start(message)
        data = self._channel.refusal(status, headers, has_body=True)
        self._phase = _Phase.DENYING
        self._log(status)
        await self._channel.write(data)

    def _log(self, status: int) -> None:
        if self._access_log:
            request = self.request
            log_access(
                self._client,
                request.method,
                request.target,
                request.http_version,
                status,
                self._started_at,
            )
