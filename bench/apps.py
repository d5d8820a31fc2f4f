"""Apps the benchmarks serve: ``python -m trio_asgi --app-dir bench apps:hello``.

- :func:`hello`: ``Hello, world!`` with a ``Content-Length``, and a lifespan that completes at
  once, so what is measured is the server, not the app.
- :func:`app`: what ``bench/run.py`` serves: ``/`` as :func:`hello`, ``POST /echo``, a 1 MiB
  ``/stream`` in 64 KiB chunks, and a WebSocket echo.
- :func:`attack`: what ``bench/attacks.py`` serves: ``/`` as :func:`hello`, ``POST /drain``
  (reads the body, answers its length), and WebSocket on ``/sink`` (accepts, never receives
  again) or any other path (echo).
"""

from typing import Any

HELLO = b"Hello, world!"
_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(HELLO)).encode()),
]


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


STREAM_CHUNK = b"x" * 65536  # 64 KiB
STREAM_CHUNKS = 16  # 16 x 64 KiB = 1 MiB
_STREAM_HEADERS = [
    (b"content-type", b"application/octet-stream"),
    (b"content-length", str(len(STREAM_CHUNK) * STREAM_CHUNKS).encode()),
]
_ECHO_TYPE = (b"content-type", b"application/octet-stream")
_NOT_FOUND = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")]


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The app ``bench/run.py`` serves on every server, routed by path:

    - ``GET /``: what :func:`hello` answers.
    - ``POST /echo``: the request body back, with a ``Content-Length``.
    - ``GET /stream``: 1 MiB in 16 ``http.response.body`` messages of 64 KiB.
    - WebSocket on any path: every message sent back as it came.

    The lifespan is implemented in full (hypercorn's trio worker fails on an app that returns
    early from it).
    """
    kind = scope["type"]
    if kind == "http":
        path = scope["path"]
        if path == "/":
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": HELLO})
        elif path == "/echo":
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            headers = [_ECHO_TYPE, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
            for _ in range(STREAM_CHUNKS - 1):
                await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
            await send({"type": "http.response.body", "body": STREAM_CHUNK})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND})
            await send({"type": "http.response.body", "body": b"Not Found"})
    elif kind == "websocket":
        message = await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})
    elif kind == "lifespan":
        await hello(scope, receive, send)


async def attack(scope: Any, receive: Any, send: Any) -> None:
    """The app ``bench/attacks.py`` serves, routed by path:

    - ``GET /``: what :func:`hello` answers (the canary's request).
    - ``POST /drain``: reads the whole body without keeping it, answers its length in bytes
      as the body (``1000000``), so the app holds no more than one body message at a time.
    - WebSocket ``/sink``: receives ``websocket.connect``, accepts, then never calls
      ``receive`` again (sleeps until cancelled): the server's receive queue fills up.
    - WebSocket on any other path: every message sent back as it came.

    Whether the accept negotiates permessage-deflate is the server's choice
    (``--ws-per-message-deflate``, on by default) and the client's offer.
    """
    kind = scope["type"]
    if kind == "http" and scope["path"] == "/drain":
        size = 0
        more = True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if message["type"] == "http.disconnect":
                return
        body = str(size).encode()
        headers = [_HEADERS[0], (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif kind == "websocket" and scope["path"] == "/sink":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        import trio  # here: run.py serves this module on asyncio servers too

        await trio.sleep_forever()  # never receives: cancelled after the client leaves
    else:
        await app(scope, receive, send)
