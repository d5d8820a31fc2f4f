"""Tools for the WebSocket tests (tests/test_websocket*.py), beside tests/helpers.py.

- :class:`WSClient`: a client-side ``wsproto.WSConnection`` over any trio stream (memory
  streams in the driver tests, a TCP stream for exact frames over loopback). It answers
  nothing by itself, so a test decides whether pings get pongs and closes get replies.
- :func:`frame`: one raw client frame, for what a well-behaved client never sends
  (unmasked frames, reserved opcodes, invalid UTF-8, a close without a code).
- :func:`echo_app` and :class:`Recorder`: the two apps most tests need;
  :func:`ws_url` and :func:`trio_websocket_client` for the loopback tests.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import trio
from trio_websocket import HandshakeError, WebSocketConnection, wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Event, Message, Ping, Request, TextMessage
from wsproto.extensions import Extension

from .helpers import RunningServer, read_until_eof

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

# -- a client-side wsproto over any stream -----------------------------------------------


class WSClient:
    """A client-side wsproto connection over any trio stream (memory or socket).

    ``connect`` sends the handshake and returns the server's answer (``AcceptConnection``
    or ``RejectConnection``); ``next_event`` returns the next wsproto event, or ``None`` at
    the server's EOF. Nothing is answered automatically: a test that wants pongs or a close
    reply sends them itself.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()

    def handshake_bytes(
        self,
        target: str = "/",
        subprotocols: Sequence[str] = (),
        extensions: Sequence[Extension] = (),
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> bytes:
        return self.ws.send(
            Request(
                host="test",
                target=target,
                subprotocols=list(subprotocols),
                extensions=list(extensions),
                extra_headers=list(extra_headers),
            )
        )

    async def connect(self, target: str = "/", **kwargs: Any) -> Event | None:
        await self.stream.send_all(self.handshake_bytes(target, **kwargs))
        return await self.next_event()

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next_event(self) -> Event | None:
        while not self._events:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.ws.receive_data(bytes(data))
            self._events.extend(self.ws.events())
        return self._events.popleft()

    async def next_message(self) -> str | bytes:
        """The next whole data message (pings are answered meanwhile)."""
        parts: list[Any] = []
        while True:
            event = await self.next_event()
            if isinstance(event, Ping):
                await self.send(event.response())
            elif isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
            else:
                raise AssertionError(f"expected a message, got {event!r}")

    async def expect_close(self, reply: bool = True) -> CloseConnection:
        """Read up to the server's close frame, answer it (if ``reply``) and read to EOF.

        A server that fails the connection (1002, 1007, 1009) may close the TCP connection
        right after its close frame (RFC 6455 section 7.1.7), so the reply may find it gone,
        and over TCP a reply that reaches a closed socket makes the kernel answer with a
        reset: once the close frame is in, a broken stream is an ending like an EOF.
        """
        event = await self.next_event()
        if not isinstance(event, CloseConnection):
            raise AssertionError(f"expected a close frame, got {event!r}")
        with contextlib.suppress(trio.BrokenResourceError):
            if reply:
                await self.send(event.response())
            assert await read_until_eof(self.stream) == b""
        return event


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One raw WebSocket frame as a client writes it (RFC 6455 section 5.2)."""
    head = bytearray([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if mask:
        key = b"\x37\xfa\x21\x3d"
        head += key
        payload = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bytes(head) + payload


#: Frame opcodes (RFC 6455 section 5.2) for :func:`frame`.
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
TIMEOUT = 5  # seconds: the bound on any single wait over loopback; a passing test takes far less


def ws_url(server: RunningServer, path: str = "/") -> str:
    """The ``ws://`` URL of ``path`` on a server started by ``helpers.start_server``."""
    return f"ws://{server.host}:{server.port}{path}"


@contextlib.asynccontextmanager
async def trio_websocket_client(
    server: RunningServer, path: str = "/", **options: Any
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client on a TCP stream that this helper closes itself.

    trio-websocket 0.12 never closes its socket when the *server* starts the close handshake
    (``aclose()`` returns early once a close reason is set), nor when the handshake is
    refused, which ``filterwarnings = error`` turns into a ResourceWarning failure; tests
    where the server closes or refuses use this instead of ``open_websocket_url``.
    ``options`` go to ``trio_websocket.wrap_client_stream``.
    """
    stream = await trio.open_tcp_stream(server.host, server.port)
    host = f"{server.host}:{server.port}"
    try:
        async with stream, trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, host, path, **options)
            try:
                yield ws
            finally:
                await ws.aclose()
    except BaseExceptionGroup as group:
        # A refused handshake is raised by trio-websocket's reader task, so it reaches us
        # in the nursery's group: hand it on alone, as open_websocket_url would.
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], HandshakeError):
            raise group.exceptions[0] from None
        raise


# -- apps --------------------------------------------------------------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, then send every message back until the disconnect."""
    if scope["type"] != "websocket":
        return  # no lifespan support
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class Recorder:
    """An app that accepts, records every message it receives and returns at the disconnect.

    ``disconnected`` is set once it received ``websocket.disconnect``.
    """

    def __init__(self, accept: dict[str, Any] | None = None) -> None:
        self.accept = accept or {"type": "websocket.accept"}
        self.scope: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.disconnected = trio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return  # no lifespan support
        self.scope = scope
        self.messages.append(await receive())
        await send(self.accept)
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "websocket.disconnect":
                self.disconnected.set()
                return

    @property
    def disconnect(self) -> dict[str, Any]:
        assert self.messages[-1]["type"] == "websocket.disconnect"
        return self.messages[-1]
