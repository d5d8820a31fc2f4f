"""The smallest useful ASGI app: every HTTP request gets ``Hello, world!``.

Run it from the repository root::

    trio-asgi --app-dir examples hello:app

and, in another terminal::

    curl http://127.0.0.1:8000/          # prints: Hello, world!

An ASGI app is one async callable. The server calls it once per *scope*: once for the
``lifespan`` scope when it starts (if it runs the lifespan protocol), then once for every HTTP
request. ``receive`` and ``send`` exchange event dicts with the server; this app never needs to
``receive``, because it answers without looking at the request body.
"""

from typing import Any

BODY = b"Hello, world!"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        # The "lifespan" scope. This app has nothing to set up, so it returns at once; with
        # the default ``--lifespan auto`` the server logs that the app does not speak the
        # lifespan protocol and serves it anyway.
        return
    # The response is two messages: the status and headers, then the body. Declaring the
    # Content-Length lets the client keep the connection open for its next request.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(BODY)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
