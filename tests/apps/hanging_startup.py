"""An app whose lifespan startup never completes: a signal must still end the server."""

from typing import Any

import trio


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await trio.sleep_forever()  # a database that never answers
    raise AssertionError(f"served a {scope['type']!r} request although startup never ended")
