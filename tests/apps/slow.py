"""An app that stays busy until the client has sent the whole request body.

When a request starts it prints ``slow: request started <path>`` to stderr, so a test that
reads the server's stderr knows the request is in flight. It answers only once the body is
complete, so the test decides how long the request stays in flight (for instance: across a
SIGTERM) without sleeping. The answer is ``received <n> bytes``.
"""

import sys
from typing import Any

from hello import lifespan

STARTED = "slow: request started"


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    print(f"{STARTED} {scope['path']}", file=sys.stderr, flush=True)
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = f"received {size} bytes".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
