"""Apps the benchmarks serve: ``python -m trio_asgi --app-dir bench apps:hello``.

- :func:`hello`: ``Hello, world!`` with a ``Content-Length``, and a lifespan that completes at
  once, so what is measured is the server, not the app.
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
