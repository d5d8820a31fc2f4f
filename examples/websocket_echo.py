"""A WebSocket echo server: every message a client sends comes straight back.

Run it from the repository root::

    trio-asgi --app-dir examples websocket_echo:app

and, in another terminal, connect with any WebSocket client, for example the one that comes
with the ``websockets`` package (type a line, get it back; CTRL+D to leave)::

    python -m websockets ws://127.0.0.1:8000/

A plain HTTP request (``curl http://127.0.0.1:8000/``) gets a short text answer saying to
use a WebSocket client.

One WebSocket connection is one call of the app with a ``websocket`` scope, which lasts as
long as the connection. The conversation with the server is:

1. ``receive()`` -> ``{"type": "websocket.connect"}``: a client asked to upgrade.
2. ``send({"type": "websocket.accept"})`` completes the handshake. (Sending
   ``websocket.close`` instead would refuse it with HTTP 403.)
3. ``receive()`` -> ``{"type": "websocket.receive", "text": ...}`` or ``..."bytes": ...}``,
   one per message, with exactly one of the two keys set; the app answers with
   ``{"type": "websocket.send", ...}`` of the same kind.
4. ``receive()`` -> ``{"type": "websocket.disconnect", "code": ...}`` when the client closed
   the connection or it broke. The app returns; the server has nothing more to close.

If the client goes away while an echo is being sent, ``send()`` raises
:class:`trio_asgi.ClientDisconnected` (an ``OSError``); letting it escape ends the app, and the
server does not log it as an error.

The app also speaks the lifespan protocol, although it has nothing to set up: it answers
``lifespan.startup`` and ``lifespan.shutdown`` with their ``.complete`` messages.
"""

from typing import Any

HTTP_BODY = b"This is a WebSocket echo server: connect with a WebSocket client to ws://HOST:PORT/\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await echo(receive, send)
    elif scope["type"] == "http":
        await send_text(send, 426, HTTP_BODY)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)


async def echo(receive: Any, send: Any) -> None:
    """Accept the connection, then send back every message until the client disconnects."""
    message = await receive()
    if message["type"] != "websocket.connect":  # the client left before the handshake ended
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        # websocket.receive: exactly one of "text" (a str) and "bytes" is set, the other is
        # absent or None.
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def send_text(send: Any, status: int, body: bytes) -> None:
    """A whole ``text/plain`` response. 426 Upgrade Required says: this URL speaks WebSocket."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"upgrade", b"websocket"),  # RFC 9110 section 15.5.22: 426 names the protocol
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Any, send: Any) -> None:
    """Answer startup and shutdown; there is nothing to open or close."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
