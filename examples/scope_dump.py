"""Answer every HTTP request with its own scope as JSON: see what the server passes an app.

Run it from the repository root::

    trio-asgi --app-dir examples scope_dump:app

and, in another terminal::

    curl 'http://127.0.0.1:8000/caf%C3%A9/a?x=1&y=2'

The answer shows every key of the ``http`` scope: ``path`` is percent-decoded text
(``"/café/a"``) while ``raw_path`` and ``query_string`` are the bytes as received, headers are
``[name, value]`` pairs with lower-cased names in the order they arrived, ``client`` and
``server`` are ``[host, port]``. JSON has no bytes or tuples, so bytes are shown decoded as
latin-1 (one character per byte, nothing lost) and tuples as lists.

The app also speaks the lifespan protocol, to show where ``scope["state"]`` comes from: what
the app puts into the lifespan scope's ``state`` during startup, every request scope gets a
shallow copy of.
"""

import json
from typing import Any


def to_json(value: Any) -> Any:
    """``value`` with bytes decoded as latin-1, tuples as lists, and anything else JSON lacks
    (an object in ``state``, say) as its ``repr``."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Startup fills the shared state; shutdown has nothing to release."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["set_at_startup"] = "copied into every request scope"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    body = json.dumps(to_json(scope), indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
