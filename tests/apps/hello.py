"""Answers every HTTP request with ``Hello, world!``; supports the lifespan protocol.

Served by the CLI tests as ``--app-dir tests/apps hello:app``.
"""

from typing import Any

HELLO = b"Hello, world!"


async def lifespan(receive: Any, send: Any) -> None:
    """Complete startup and shutdown, as an app with nothing to set up does."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(HELLO)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})
