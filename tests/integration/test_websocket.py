"""Tier 3: WebSockets over loopback with real clients.

trio-websocket (Trio-native) for most conversations; the ``websockets`` library's sync client,
run in a worker thread, for permessage-deflate (it offers the extension by default); a raw TCP
stream with a client-side wsproto (:class:`~tests.websocket_tools.WSClient`) where exact frames
or an abrupt drop matter. Every wait is bounded by ``trio.fail_after(TIMEOUT)``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
import websockets.sync.client
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url
from wsproto.events import AcceptConnection, CloseConnection, TextMessage

from trio_asgi import ClientDisconnected

from ..helpers import RunningServer, error_records, start_server
from ..websocket_tools import (
    TEXT,
    TIMEOUT,
    Recorder,
    WSClient,
    echo_app,
    frame,
    trio_websocket_client,
    ws_url,
)

MiB = 1 << 20


async def start_ws_server(nursery: trio.Nursery, app: Any, **config: Any) -> RunningServer:
    """``helpers.start_server`` without lifespan: the apps here speak only ``websocket``."""
    return await start_server(nursery, app, **{"lifespan": "off", **config})


async def test_trio_websocket_echoes_text_and_bytes_of_1_mib(nursery: trio.Nursery) -> None:
    server = await start_ws_server(nursery, echo_app)
    payloads: list[str | bytes] = ["hello", b"\x00\x01", "☃" * 10, "t" * MiB, os.urandom(MiB)]
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server), max_message_size=2 * MiB) as ws:
            for payload in payloads:
                await ws.send_message(payload)
                assert await ws.get_message() == payload
        assert ws.closed is not None
        assert ws.closed.code == 1000
        await server.shutdown()


async def test_scope_over_a_socket_has_the_addresses(nursery: trio.Nursery) -> None:
    app = Recorder()
    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server, "/room/7?lang=en")) as ws:
            await ws.send_message("hi")
            local = (str(ws.local.address), ws.local.port)  # type: ignore[union-attr]
        await app.disconnected.wait()
        await server.shutdown()
    scope = app.scope
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/room/7"
    assert scope["query_string"] == b"lang=en"
    assert scope["client"] == local
    assert scope["server"] == ("127.0.0.1", server.port)
    assert scope["subprotocols"] == []
    assert app.messages[1] == {"type": "websocket.receive", "text": "hi"}
    assert app.disconnect["code"] == 1000


async def test_subprotocol_and_accept_headers_reach_trio_websocket(nursery: trio.Nursery) -> None:
    offered: list[list[str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered.append(scope["subprotocols"])
        await receive()
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": scope["subprotocols"][-1],
                "headers": [(b"x-room", b"lobby")],
            }
        )
        await send({"type": "websocket.close"})

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(
            server, subprotocols=["chat.v3", "chat.v2", "chat.v1"]
        ) as ws:
            assert ws.subprotocol == "chat.v1"
            assert (b"x-room", b"lobby") in ws.handshake_headers
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
        await server.shutdown()
    assert offered == [["chat.v3", "chat.v2", "chat.v1"]]


async def test_app_close_code_and_reason_reach_trio_websocket(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "closing now"})
        await send({"type": "websocket.close", "code": 4040, "reason": "room closed"})

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(server) as ws:
            assert await ws.get_message() == "closing now"
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
        await server.shutdown()
    assert (info.value.reason.code, info.value.reason.reason) == (4040, "room closed")


async def test_trio_websocket_close_code_and_reason_reach_the_app(nursery: trio.Nursery) -> None:
    app = Recorder()
    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server)) as ws:
            await ws.send_message(b"bye soon")
            await ws.aclose(code=4001, reason="see you")
        await app.disconnected.wait()
        await server.shutdown()
    assert app.messages[1] == {"type": "websocket.receive", "bytes": b"bye soon"}
    assert app.disconnect == {"type": "websocket.disconnect", "code": 4001, "reason": "see you"}


async def test_client_close_is_echoed_over_tcp(nursery: trio.Nursery) -> None:
    app = Recorder()
    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            client = WSClient(stream)
            assert isinstance(await client.connect(), AcceptConnection)
            await client.send(CloseConnection(code=4003, reason="leaving"))
            echo = await client.expect_close(reply=False)  # RFC 6455 section 5.5.1
        await app.disconnected.wait()
        await server.shutdown()
    assert echo.code == 4003
    assert app.disconnect == {"type": "websocket.disconnect", "code": 4003, "reason": "leaving"}


async def test_dropped_tcp_connection_is_a_1006(nursery: trio.Nursery) -> None:
    app = Recorder()
    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            client = WSClient(stream)
            assert isinstance(await client.connect(), AcceptConnection)
            await client.send(TextMessage(data="then nothing"))
        await app.disconnected.wait()
        await server.shutdown()
    assert app.messages[1] == {"type": "websocket.receive", "text": "then nothing"}
    assert app.disconnect["code"] == 1006


async def test_close_before_accept_is_a_403_for_trio_websocket(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            async with trio_websocket_client(server):
                pass
        await server.shutdown()
    assert info.value.status_code == 403


async def test_denial_response_reaches_trio_websocket(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 429,
                "headers": [(b"retry-after", b"30"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"slow ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"down"})

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            async with trio_websocket_client(server):
                pass
        await server.shutdown()
    assert info.value.status_code == 429
    assert (b"retry-after", b"30") in info.value.headers
    assert info.value.body == b"slow down"


async def test_send_after_the_client_left_raises_client_disconnected_quietly(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: list[BaseException] = []
    app_done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
            await send({"type": "websocket.accept"})
            assert (await receive())["type"] == "websocket.disconnect"
            try:
                await send({"type": "websocket.send", "text": "hello?"})
            except ClientDisconnected as exc:
                outcome.append(exc)
            await send({"type": "websocket.send", "text": "escapes"})
        finally:
            app_done.set()

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server)):
            pass
        await app_done.wait()
        await server.shutdown()
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)
    assert error_records(caplog) == []


# -- the websockets library: permessage-deflate ------------------------------------------


def websockets_echo(url: str, payloads: list[str | bytes]) -> tuple[str | None, list[Any]]:
    """In a worker thread: the 101's Sec-WebSocket-Extensions and every echo."""
    with websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None
    ) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        echoes = []
        for payload in payloads:
            ws.send(payload)
            echoes.append(ws.recv(timeout=TIMEOUT))
    return extensions, echoes


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate-on", "deflate-off"])
async def test_websockets_library_gets_permessage_deflate_when_enabled(
    nursery: trio.Nursery, deflate: bool
) -> None:
    server = await start_ws_server(nursery, echo_app, ws_per_message_deflate=deflate)
    payloads: list[str | bytes] = ["compress me " * (MiB // 12), os.urandom(MiB), "small ☃"]
    with trio.fail_after(TIMEOUT):
        extensions, echoes = await trio.to_thread.run_sync(
            websockets_echo, ws_url(server), payloads
        )
        await server.shutdown()
    assert echoes == payloads
    if deflate:
        assert extensions is not None
        assert extensions.split(";")[0].strip() == "permessage-deflate"
    else:
        assert extensions is None


# -- graceful shutdown -------------------------------------------------------------------


async def test_graceful_shutdown_closes_ten_websockets_with_1012(nursery: trio.Nursery) -> None:
    clients = 10
    app_disconnects: list[dict[str, Any]] = []
    client_codes: list[int] = []
    echoed = 0
    all_open = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                app_disconnects.append(message)
                return
            await send({"type": "websocket.send", "text": message["text"]})

    async def client() -> None:
        nonlocal echoed
        async with trio_websocket_client(server) as ws:
            await ws.send_message("ready")
            assert await ws.get_message() == "ready"
            echoed += 1
            if echoed == clients:
                all_open.set()
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            client_codes.append(info.value.reason.code)

    server = await start_ws_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as client_nursery:
            for _ in range(clients):
                client_nursery.start_soon(client)
            await all_open.wait()
            await server.shutdown()  # returns once serve() has returned
    assert server.stopped
    assert client_codes == [1012] * clients
    assert [d["code"] for d in app_disconnects] == [1012] * clients


# -- a misbehaving client does not stop the server ---------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [frame(TEXT, b"unmasked", mask=False), b"\xff" * 64, frame(TEXT, b"\xc3\x28")],
    ids=["unmasked-frame", "0xff-bytes", "invalid-utf8"],
)
async def test_a_client_sending_garbage_is_closed_and_the_next_is_served(
    nursery: trio.Nursery, garbage: bytes
) -> None:
    server = await start_ws_server(nursery, echo_app)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            client = WSClient(stream)
            assert isinstance(await client.connect(), AcceptConnection)
            await stream.send_all(garbage)
            close = await client.expect_close()
        async with open_websocket_url(ws_url(server)) as ws:
            await ws.send_message("still serving")
            assert await ws.get_message() == "still serving"
        await server.shutdown()
    assert isinstance(close, CloseConnection)
    assert close.code in (1002, 1007)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("kind", ["bytes", "text"])
def test_data_frames_are_the_frames_wsproto_would_write(kind: str, size: int) -> None:
    """Without an extension, trio-asgi frames websocket.send itself (RFC 6455 section 5.2);
    a wsproto client must read back exactly what was sent, as from wsproto's own frames."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import BytesMessage, Request

    from trio_asgi._ws.frames import data_frame

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/")))
    next(server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    payload: Any = "é" * (size // 2) if kind == "text" else os.urandom(size)
    wsproto_frame = server.send(
        TextMessage(data=payload) if kind == "text" else BytesMessage(data=payload)
    )
    ours = data_frame({"type": "websocket.send", kind: payload})
    assert ours == wsproto_frame
    client.receive_data(ours)
    received: Any = [event.data for event in client.events()]
    assert ("".join(received) if kind == "text" else b"".join(received)) == payload
