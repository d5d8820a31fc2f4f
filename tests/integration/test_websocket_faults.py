"""WebSocket faults found while building: a peer that stops reading, an HTTP/1.0 handshake."""

from __future__ import annotations

from typing import Any

import trio

from ..helpers import start_server

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def make_flood(ended: trio.Event) -> Any:
    async def flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Accept, then send 64 KiB messages until send() raises or the client leaves."""
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        try:
            async with trio.open_nursery() as nursery:

                async def cancel_on_disconnect() -> None:
                    await receive()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(cancel_on_disconnect)
                try:
                    while True:
                        await send({"type": "websocket.send", "bytes": b"x" * 65536})
                except OSError:
                    nursery.cancel_scope.cancel()
        finally:
            ended.set()

    return flood


# A peer that stopped reading while the app is blocked in send(): the app's send_all holds
# the write lock, so the ping cannot even be written. The ping timeout must still fire, close
# the connection and so end the app's send().
async def test_ping_timeout_covers_a_peer_that_stopped_reading(nursery: trio.Nursery) -> None:
    ended = trio.Event()
    server = await start_server(
        nursery, make_flood(ended), ws_ping_interval=0.2, ws_ping_timeout=0.2
    )
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        await stream.send_all(HANDSHAKE)  # and never read
        with trio.move_on_after(3):  # interval + timeout is 0.4 s
            await ended.wait()
    assert ended.is_set(), "the app is still blocked in send() 3 s later"
    await server.shutdown()


# RFC 6455 section 4.1: the handshake must be HTTP/1.1 or higher.
async def test_http10_upgrade_request_is_not_upgraded(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

    server = await start_server(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        await stream.send_all(HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0"))
        with trio.fail_after(5):
            reply = await stream.receive_some(65536)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"HTTP/1.1" in reply.partition(b"\r\n\r\n")[2]  # the reason names what to fix
