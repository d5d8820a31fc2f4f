"""An app whose lifespan startup fails: the server must not serve it (CLI exit status 3)."""

from typing import Any

MESSAGE = "database is unreachable"


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": MESSAGE})
        return
    raise AssertionError(f"served a {scope['type']!r} request although startup failed")
