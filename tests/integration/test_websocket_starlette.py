"""Tier 3: a Starlette ``WebSocketRoute`` served end to end (Starlette runs on Trio via anyio).

What a framework user relies on: accept (with a subprotocol), ``receive_text``/``send_text``
and bytes, the lifespan state on ``websocket.state``, ``close(code, reason)`` seen by the
client, ``WebSocketDisconnect`` with the client's code seen by the endpoint, a close before
accept answered with 403, and ``send_denial_response``. Clients are trio-websocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from ..helpers import RunningServer, start_server
from ..websocket_tools import TIMEOUT, trio_websocket_client, ws_url


class Probe:
    """What the endpoints record for the test, and the event the two meet on."""

    def __init__(self) -> None:
        self.disconnects: list[tuple[int, str | None]] = []
        self.endpoint_done = trio.Event()


def build_app(probe: Probe) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "welcome"}

    async def chat(websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="chat.v1" if "chat.v1" in offered else None)
        await websocket.send_text(websocket.state.greeting)
        try:
            while True:
                text = await websocket.receive_text()
                if text == "quit":
                    await websocket.close(code=4001, reason="you asked to leave")
                    return
                await websocket.send_text(text.upper())
                await websocket.send_bytes(text.encode()[::-1])
        except WebSocketDisconnect as exc:
            probe.disconnects.append((exc.code, exc.reason))
        finally:
            probe.endpoint_done.set()

    async def members_only(websocket: WebSocket) -> None:
        await websocket.send_denial_response(
            PlainTextResponse("members only", status_code=401, headers={"x-login": "/login"})
        )

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    return Starlette(
        routes=[
            WebSocketRoute("/chat", chat),
            WebSocketRoute("/members", members_only),
            WebSocketRoute("/refuse", refuse),
        ],
        lifespan=lifespan,
    )


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[tuple[RunningServer, Probe]]:
    probe = Probe()
    server = await start_server(nursery, build_app(probe))
    yield server, probe
    with trio.fail_after(TIMEOUT):
        await server.shutdown()


async def test_endpoint_echoes_then_closes_with_its_code(
    served: tuple[RunningServer, Probe],
) -> None:
    server, probe = served
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(server, "/chat", subprotocols=["x", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            assert await ws.get_message() == "welcome"  # lifespan state on websocket.state
            await ws.send_message("hello")
            assert await ws.get_message() == "HELLO"
            assert await ws.get_message() == b"olleh"
            await ws.send_message("quit")
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
        await probe.endpoint_done.wait()
    assert (info.value.reason.code, info.value.reason.reason) == (4001, "you asked to leave")
    assert probe.disconnects == []


async def test_endpoint_sees_websocket_disconnect_with_the_clients_code(
    served: tuple[RunningServer, Probe],
) -> None:
    server, probe = served
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server, "/chat")) as ws:
            assert await ws.get_message() == "welcome"
            await ws.send_message("ping")
            assert await ws.get_message() == "PING"
            assert await ws.get_message() == b"gnip"
            await ws.aclose(code=4002, reason="done here")
        await probe.endpoint_done.wait()
    assert probe.disconnects == [(4002, "done here")]


async def test_endpoint_sees_websocket_disconnect_when_the_socket_drops(
    served: tuple[RunningServer, Probe],
) -> None:
    server, probe = served
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(
                b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            head = b""
            while b"welcome" not in head:  # the 101, then the greeting frame
                head += await stream.receive_some(4096)
            assert head.startswith(b"HTTP/1.1 101 ")
        await probe.endpoint_done.wait()
    assert probe.disconnects == [(1006, "")]


async def test_close_before_accept_is_a_403(served: tuple[RunningServer, Probe]) -> None:
    server, _ = served
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            async with trio_websocket_client(server, "/refuse"):
                pass
    assert info.value.status_code == 403


async def test_send_denial_response_reaches_the_client(
    served: tuple[RunningServer, Probe],
) -> None:
    server, _ = served
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            async with trio_websocket_client(server, "/members"):
                pass
    assert info.value.status_code == 401
    assert (b"x-login", b"/login") in info.value.headers
    assert info.value.body == b"members only"
