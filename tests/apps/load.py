"""An app for the SIGTERM-under-load test: every request takes a little while, and the app
records which requests it started, so the test knows which ones the server accepted.

- Any request: the app notes ``scope["path"]`` as started, reads the whole request body,
  waits ``DELAY``, sends the response head and half the body, waits ``DELAY`` again, then
  sends the rest. The body is the path itself, so a client can check it got its own answer.
  A response is therefore in flight (head out, body not) for a while, which is what graceful
  shutdown must not cut.
- A path starting with ``/held`` also prints ``load: held request started <path>`` to stderr,
  so the test can hold one request open across the shutdown (it withholds part of the body).
- Lifespan shutdown, which the server runs only once its last connection has closed, writes
  every started path, one per line, to the file named by the ``LOAD_APP_RECORD`` environment
  variable.

Served as ``--app-dir tests/apps load:app``.
"""

import os
import sys
from typing import Any

import trio

DELAY = 0.01  # seconds, twice per request
HELD = "load: held request started"
RECORD_VARIABLE = "LOAD_APP_RECORD"

_started: list[str] = []


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path: str = scope["path"]
    _started.append(path)
    if path.startswith("/held"):
        print(f"{HELD} {path}", file=sys.stderr, flush=True)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message.get("more_body", False):
            break
    body = path.encode()
    half = len(body) // 2
    await trio.sleep(DELAY)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body[:half], "more_body": True})
    await trio.sleep(DELAY)
    await send({"type": "http.response.body", "body": body[half:]})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await trio.Path(os.environ[RECORD_VARIABLE]).write_text(
                "".join(f"{path}\n" for path in _started)
            )
            await send({"type": "lifespan.shutdown.complete"})
            return
