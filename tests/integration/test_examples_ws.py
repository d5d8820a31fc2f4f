"""The WebSocket examples work as their docstrings say: websocket_echo.py and chat.py.

Each example is loaded from its file (examples/ is not a package) and served on a real socket
with :func:`~tests.helpers.start_server`. The clients are real: trio-websocket for most
conversations, the ``websockets`` package's sync client (in a thread) where permessage-deflate
matters and for refused handshakes, httpx for plain HTTP. Every wait is bounded with
``trio.fail_after``.

trio-websocket 0.12.2's client leaves its TCP socket open when the server closes first, or
refuses the handshake (``ConnectionRejected``), and ``filterwarnings = error`` turns the
ResourceWarning into a failure. So :func:`open_ws` opens the TCP stream itself and closes it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Final

import httpx
import pytest
import trio
import websockets.exceptions
import websockets.sync.client
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, wrap_client_stream

from ..helpers import RunningServer, start_server

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
#: Bound on every conversation with a server, in seconds.
TIMEOUT: Final = 10.0


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module named ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


websocket_echo = load_example("websocket_echo")
chat = load_example("chat")


def ws_url(server: RunningServer, path: str = "/") -> str:
    return f"ws://{server.host}:{server.port}{path}"


@asynccontextmanager
async def open_ws(server: RunningServer, path: str = "/") -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client connection to ``server``, over a TCP stream this test owns."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream, trio.open_nursery() as nursery:
        ws = await wrap_client_stream(nursery, stream, f"{server.host}:{server.port}", path)
        try:
            yield ws
        finally:
            await ws.aclose()  # returns at once if the server closed first


async def refused_handshake(url: str) -> tuple[int, bytes]:
    """Open a WebSocket the server must refuse; return the HTTP status and body it sent."""

    def connect() -> tuple[int, bytes]:
        try:
            with websockets.sync.client.connect(url, open_timeout=TIMEOUT):
                pass
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code, exc.response.body or b""
        raise AssertionError(f"the server accepted the WebSocket handshake for {url}")

    return await trio.to_thread.run_sync(connect)


async def read_until_closed(ws: WebSocketConnection) -> tuple[list[str | bytes], CloseReason]:
    """Every message until the connection closes, and why it closed."""
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await ws.get_message())
        except ConnectionClosed as exc:
            reason = exc.reason
            break
    assert reason is not None
    return messages, reason


# -- websocket_echo.py -------------------------------------------------------------------------


async def test_echo_sends_back_text_and_bytes(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, websocket_echo.app)
    messages: list[str | bytes] = [
        "hello",
        "café ☕",
        "",
        b"\x00\xff binary",
        b"",
        "x" * 100_000,
        bytes(range(256)) * 400,
    ]
    with trio.fail_after(TIMEOUT):
        async with open_ws(server) as ws:
            for message in messages:
                await ws.send_message(message)
                echoed = await ws.get_message()
                assert type(echoed) is type(message)
                assert echoed == message
        await server.shutdown()
    assert server.stopped


async def test_echo_app_returns_when_the_client_closes(nursery: trio.Nursery) -> None:
    # No deadline on the server's side: shutdown() returns only if the app returned itself.
    server = await start_server(
        nursery, websocket_echo.app, graceful_timeout=math.inf, disconnect_timeout=math.inf
    )
    with trio.fail_after(TIMEOUT):
        async with open_ws(server) as ws:
            await ws.send_message("one")
            assert await ws.get_message() == "one"
            await ws.aclose(code=1000)
        await server.shutdown()
    assert server.stopped


def _echo_with_websockets(url: str) -> tuple[str | None, str, bytes]:
    """In a thread: the ``websockets`` sync client, which offers permessage-deflate."""
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        ws.send("compress me " * 10_000)
        text = ws.recv(timeout=TIMEOUT)
        ws.send(b"\x01\x02\x03")
        data = ws.recv(timeout=TIMEOUT)
    assert isinstance(text, str)
    assert isinstance(data, bytes)
    return extensions, text, data


@pytest.mark.parametrize("deflate", [True, False])
async def test_echo_with_the_websockets_client_and_permessage_deflate(
    nursery: trio.Nursery, deflate: bool
) -> None:
    server = await start_server(nursery, websocket_echo.app, ws_per_message_deflate=deflate)
    with trio.fail_after(TIMEOUT):
        extensions, text, data = await trio.to_thread.run_sync(
            _echo_with_websockets, ws_url(server)
        )
        await server.shutdown()
    assert text == "compress me " * 10_000
    assert data == b"\x01\x02\x03"
    if deflate:
        assert extensions is not None
        assert extensions.startswith("permessage-deflate")
    else:
        assert extensions is None


async def test_echo_answers_plain_http_with_a_hint(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, websocket_echo.app)
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as http:
            response = await http.get(server.url + "/")
        await server.shutdown()
    assert response.status_code == 426
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["upgrade"] == "websocket"
    assert "connect with a WebSocket client" in response.text


async def test_echo_with_ws_none_refuses_the_upgrade_as_plain_http(nursery: trio.Nursery) -> None:
    """With ``ws="none"`` the handshake reaches the app as an ``http`` request."""
    server = await start_server(nursery, websocket_echo.app, ws="none")
    with trio.fail_after(TIMEOUT):
        status, body = await refused_handshake(ws_url(server))
        await server.shutdown()
    assert status == 426
    assert body == websocket_echo.HTTP_BODY


async def test_echo_speaks_lifespan(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    server = await start_server(nursery, websocket_echo.app, lifespan="on")
    with trio.fail_after(TIMEOUT):
        async with open_ws(server) as ws:
            await ws.send_message("ping")
            assert await ws.get_message() == "ping"
        await server.shutdown()
    messages = [record.getMessage() for record in caplog.records]
    assert "Application startup complete." in messages
    assert "Application shutdown complete." in messages


# -- chat.py: the room alone -------------------------------------------------------------------


async def test_room_drops_a_client_whose_outbox_is_full() -> None:
    room = chat.Room(outbox_size=2)
    fast_name, fast = room.join()
    slow_name, slow = room.join()
    assert room.names == [fast_name, slow_name] == ["guest-1", "guest-2"]
    for text in ["a", "b", "c"]:
        room.broadcast(text)
        assert fast.receive_nowait() == text  # fast keeps up; slow never reads
    assert room.names == ["guest-1"]  # "c" found slow's outbox full
    assert [slow.receive_nowait(), slow.receive_nowait()] == ["a", "b"]
    with pytest.raises(trio.EndOfChannel):
        slow.receive_nowait()
    room.broadcast("d")
    assert fast.receive_nowait() == "d"
    room.leave(slow_name)  # leaving twice (dropped, then the connection's finally) is harmless
    room.leave(fast_name)
    assert room.names == []
    with pytest.raises(trio.EndOfChannel):
        fast.receive_nowait()


# -- chat.py: over the network -----------------------------------------------------------------


async def join(stack: AsyncExitStack, server: RunningServer, name: str) -> WebSocketConnection:
    """Connect a client to the chat; return once it has heard its own arrival as ``name``."""
    ws = await stack.enter_async_context(open_ws(server, "/ws"))
    assert await ws.get_message() == f"{name} joined"
    return ws


async def test_chat_serves_the_html_page(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, chat.app)
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as http:
            page = await http.get(server.url + "/")
            missing = await http.get(server.url + "/nope")
        await server.shutdown()
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<!doctype html>" in page.text
    assert 'new WebSocket(scheme + location.host + "/ws")' in page.text
    assert "textContent" in page.text
    assert missing.status_code == 404


async def test_chat_refuses_websockets_on_other_paths_with_403(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, chat.make_app())
    with trio.fail_after(TIMEOUT):
        status, _ = await refused_handshake(ws_url(server, "/"))
        await server.shutdown()
    assert status == 403


async def test_chat_message_reaches_everyone_and_leaves_are_announced(
    nursery: trio.Nursery,
) -> None:
    server = await start_server(nursery, chat.make_app())
    with trio.fail_after(TIMEOUT):
        async with AsyncExitStack() as stack:
            alice = await join(stack, server, "guest-1")
            bob = await join(stack, server, "guest-2")
            assert await alice.get_message() == "guest-2 joined"
            carol = await join(stack, server, "guest-3")
            for ws in (alice, bob):
                assert await ws.get_message() == "guest-3 joined"

            await alice.send_message("hello, room")
            for ws in (alice, bob, carol):
                assert await ws.get_message() == "guest-1: hello, room"

            # Binary messages are ignored: carol's next message is bob's text.
            await bob.send_message(b"\x00 binary")
            await bob.send_message("hi")
            for ws in (alice, bob, carol):
                assert await ws.get_message() == "guest-2: hi"

            # bob leaves; the others hear it and go on chatting without him.
            await bob.aclose()
            for ws in (alice, carol):
                assert await ws.get_message() == "guest-2 left"
            await carol.send_message("just us")
            for ws in (alice, carol):
                assert await ws.get_message() == "guest-3: just us"
            with pytest.raises(ConnectionClosed):
                await bob.get_message()

            # Someone new gets the next number: names are never reused.
            dave = await join(stack, server, "guest-4")
            for ws in (alice, carol):
                assert await ws.get_message() == "guest-4 joined"
            await dave.send_message("hello")
            for ws in (alice, carol, dave):
                assert await ws.get_message() == "guest-4: hello"
        await server.shutdown()
    assert server.stopped


async def test_chat_each_app_has_its_own_room(nursery: trio.Nursery) -> None:
    first = await start_server(nursery, chat.make_app())
    second = await start_server(nursery, chat.make_app())
    with trio.fail_after(TIMEOUT):
        async with AsyncExitStack() as stack:
            one = await join(stack, first, "guest-1")
            other = await join(stack, second, "guest-1")  # numbered from 1: a new room
            await one.send_message("only the first room hears this")
            assert await one.get_message() == "guest-1: only the first room hears this"
            await other.send_message("and this only the second")
            assert await other.get_message() == "guest-1: and this only the second"
        await first.shutdown()
        await second.shutdown()


class WatchedRoom(chat.Room):  # type: ignore[misc]
    """A :class:`chat.Room` that sets an event when a client leaves (or is dropped)."""

    def __init__(self, outbox_size: int) -> None:
        super().__init__(outbox_size)
        self.left: defaultdict[str, trio.Event] = defaultdict(trio.Event)

    def leave(self, name: str) -> None:
        super().leave(name)
        self.left[name].set()


async def test_chat_drops_a_slow_client_without_slowing_the_others(
    nursery: trio.Nursery,
) -> None:
    room = WatchedRoom(outbox_size=4)
    server = await start_server(nursery, chat.make_app(room))
    chunk = "x" * 256 * 1024
    with trio.fail_after(TIMEOUT * 2):
        async with AsyncExitStack() as stack:
            fast = await join(stack, server, "guest-1")
            slow = await join(stack, server, "guest-2")
            assert await fast.get_message() == "guest-2 joined"
            # slow stops reading. fast talks in lockstep (each message waits for its own
            # echo), so its outbox never holds more than one; slow's fills up once the socket
            # buffers between the server and slow are full.
            sent = 0
            while not room.left["guest-2"].is_set():
                await fast.send_message(chunk)
                assert await fast.get_message() == f"guest-1: {chunk}"
                sent += 1
            assert room.names == ["guest-1"]
            await fast.send_message("still here")
            assert await fast.get_message() == "guest-1: still here"

            # slow reads again: what was already on its way, then the 1008 close.
            received, reason = await read_until_closed(slow)
            assert set(received) == {f"guest-1: {chunk}"}
            assert 0 < len(received) < sent  # the message that found the outbox full is lost
            assert reason.code == chat.CLOSE_TOO_SLOW == 1008
            assert reason.reason == "too slow"
            # Its connection over, slow is announced as gone.
            assert await fast.get_message() == "guest-2 left"
        await server.shutdown()


async def test_chat_graceful_shutdown_closes_every_client_with_1012(
    nursery: trio.Nursery,
) -> None:
    # No deadline on the server's side: shutdown() returns only if every app returned itself.
    server = await start_server(
        nursery, chat.make_app(), graceful_timeout=math.inf, disconnect_timeout=math.inf
    )
    codes: list[int] = []

    async def record_close_code(ws: WebSocketConnection) -> None:
        _, reason = await read_until_closed(ws)  # a "left" announcement may slip in first
        codes.append(reason.code)

    with trio.fail_after(TIMEOUT):
        async with AsyncExitStack() as stack:
            alice = await join(stack, server, "guest-1")
            bob = await join(stack, server, "guest-2")
            assert await alice.get_message() == "guest-2 joined"
            async with trio.open_nursery() as readers:
                readers.start_soon(record_close_code, alice)
                readers.start_soon(record_close_code, bob)
                await server.shutdown()
    assert codes == [1012, 1012]
    assert server.stopped
