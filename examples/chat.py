"""A chat room: every message a client sends reaches every connected client.

Run it from the repository root::

    trio-asgi --app-dir examples chat:app

then open http://127.0.0.1:8000/ in two browser windows and chat between them. Any WebSocket
client can join too::

    python -m websockets ws://127.0.0.1:8000/ws

The pieces:

* ``GET /`` over plain HTTP returns a small HTML page whose JavaScript connects to
  ``ws://HOST/ws``, shows what arrives and sends what you type.
* :class:`Room` holds, for each connected client, the sending end of a bounded trio memory
  channel: its *outbox*. ``Room.broadcast`` puts a message into every outbox without waiting.
  A client whose outbox is full (it reads slower than the room talks) is dropped from the
  room instead of slowing everyone else down.
* Each WebSocket connection (:func:`chat`) runs two tasks in one nursery:

  - :func:`receive_and_broadcast`: ``websocket.receive`` from the client ->
    ``room.broadcast``;
  - :func:`forward_outbox`: the client's outbox -> ``websocket.send``.

  When the client disconnects, the receiving task cancels the nursery, which stops the
  forwarding task wherever it waits; the ``finally`` takes the client out of the room and
  tells the others. The nursery *is* the connection's lifetime.

The room lives in the app: :func:`make_app` creates one room and an app that uses it, and the
module-level ``app`` is one such instance. No other globals: two apps made by ``make_app()``
are two separate rooms (the tests make a fresh one each). With ``--factory`` the command can
make the app itself: ``trio-asgi --app-dir examples --factory chat:make_app``.
"""

from __future__ import annotations

from typing import Any, Final

import trio

#: Messages waiting for one client before it counts as too slow and is dropped.
OUTBOX_SIZE: Final = 16
#: WebSocket close code for a client dropped for being too slow (RFC 6455 section 7.4.1,
#: "a message that violates its policy").
CLOSE_TOO_SLOW: Final = 1008


class Room:
    """The clients in the chat room, each with its bounded outbox.

    Every method is synchronous: joining, leaving and broadcasting never wait, so nothing one
    client does can hold up another.
    """

    def __init__(self, outbox_size: int = OUTBOX_SIZE) -> None:
        self.outbox_size = outbox_size
        self._outboxes: dict[str, trio.MemorySendChannel[str]] = {}
        self._joined = 0  # clients that ever joined, for their names

    @property
    def names(self) -> list[str]:
        """The clients in the room, in the order they joined."""
        return list(self._outboxes)

    def join(self) -> tuple[str, trio.MemoryReceiveChannel[str]]:
        """Add a client; return its name and the receiving end of its outbox."""
        self._joined += 1
        name = f"guest-{self._joined}"
        send_channel, receive_channel = trio.open_memory_channel[str](self.outbox_size)
        self._outboxes[name] = send_channel
        return name, receive_channel

    def leave(self, name: str) -> None:
        """Take ``name`` out of the room and close its outbox (it may already be gone)."""
        outbox = self._outboxes.pop(name, None)
        if outbox is not None:
            outbox.close()  # its forwarding task sees the end of the channel

    def broadcast(self, text: str) -> None:
        """Queue ``text`` for every client in the room; drop those whose outbox is full."""
        for name, outbox in list(self._outboxes.items()):
            try:
                outbox.send_nowait(text)
            except trio.WouldBlock:  # full: this client reads slower than the room talks
                self.leave(name)
            except trio.BrokenResourceError:  # its forwarding task has ended: it is leaving
                self.leave(name)


def make_app(room: Room | None = None) -> Any:
    """A chat app with a room of its own (or ``room``, for a caller that wants to watch it)."""
    if room is None:
        room = Room()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            if scope["path"] == "/ws":
                await chat(room, receive, send)
            else:
                # Closing before accepting refuses the handshake: the client gets HTTP 403.
                await send({"type": "websocket.close"})
        elif scope["type"] == "http":
            if scope["method"] in ("GET", "HEAD") and scope["path"] == "/":
                await send_response(send, 200, b"text/html; charset=utf-8", PAGE)
            else:
                await send_response(send, 404, b"text/plain; charset=utf-8", b"Not found\n")
        # The "lifespan" scope: nothing to set up (the room is made with the app), so return.
        # The server then serves the app without lifespan.

    return app


async def chat(room: Room, receive: Any, send: Any) -> None:
    """One client's whole stay in the room, from handshake to disconnect."""
    message = await receive()
    if message["type"] != "websocket.connect":  # the client left before the handshake ended
        return
    await send({"type": "websocket.accept"})
    name, outbox = room.join()
    room.broadcast(f"{name} joined")  # the newcomer gets it too: that is how it learns its name
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_and_broadcast, room, name, receive, nursery.cancel_scope)
            nursery.start_soon(forward_outbox, outbox, send, nursery.cancel_scope)
    finally:
        # No await here: this runs inside a cancelled scope when serve() is cancelled, and
        # both calls are synchronous, so the others always hear that the client left.
        room.leave(name)
        room.broadcast(f"{name} left")


async def receive_and_broadcast(
    room: Room, name: str, receive: Any, cancel_scope: trio.CancelScope
) -> None:
    """Broadcast each text message from the client; cancel the connection when it leaves."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            cancel_scope.cancel()  # stops forward_outbox too
            return
        if message.get("text") is not None:  # this chat is text only: binary messages are ignored
            room.broadcast(f"{name}: {message['text']}")


async def forward_outbox(
    outbox: trio.MemoryReceiveChannel[str], send: Any, cancel_scope: trio.CancelScope
) -> None:
    """Send the client everything that arrives in its outbox.

    The outbox ends when the room dropped the client for being too slow: then close the
    WebSocket with :data:`CLOSE_TOO_SLOW` and end the connection. (A client that stops
    reading altogether leaves this task waiting in ``send()`` until the connection ends; that
    holds up only this client's connection, never the room.)
    """
    try:
        with outbox:
            async for text in outbox:
                await send({"type": "websocket.send", "text": text})
        # The room closed the outbox: this client was too slow.
        await send({"type": "websocket.close", "code": CLOSE_TOO_SLOW, "reason": "too slow"})
    except OSError:
        # send() raises trio_asgi.ClientDisconnected (an OSError) once the client has gone:
        # there is nobody left to send to.
        return
    finally:
        cancel_scope.cancel()  # the connection ends with this task, however it ends


async def send_response(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    """A whole HTTP response with a Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: The browser client: connects to /ws on the host that served the page, appends every message
#: to the list, sends the input box's text on Enter. textContent, never innerHTML, so a message
#: cannot inject markup.
PAGE: Final = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>trio-asgi chat</title>
<style>
  body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
  #log { list-style: none; padding: 0; height: 20em; overflow-y: auto; border: 1px solid #ccc; }
  #log li { padding: 0.2em 0.5em; }
  #text { width: 100%; box-sizing: border-box; }
</style>
</head>
<body>
<h1>trio-asgi chat</h1>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something, press Enter"></form>
<script>
  const log = document.getElementById("log");
  const text = document.getElementById("text");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws");

  function show(line) {
    const item = document.createElement("li");
    item.textContent = line;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  socket.addEventListener("message", (event) => show(event.data));
  socket.addEventListener("close", (event) =>
    show(`(disconnected: ${event.code}${event.reason ? " " + event.reason : ""})`));
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (text.value && socket.readyState === WebSocket.OPEN) {
      socket.send(text.value);
      text.value = "";
    }
  });
</script>
</body>
</html>
"""

app = make_app()
