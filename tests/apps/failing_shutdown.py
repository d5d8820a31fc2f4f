"""An app that serves, then raises during its lifespan shutdown (CLI exit status 4)."""

from typing import Any

MESSAGE = "could not flush the queue"


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        raise RuntimeError(MESSAGE)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
