"""A slow streaming response that stops as soon as the client goes away.

Run it from the repository root::

    trio-asgi --app-dir examples streaming:app

and, in another terminal::

    curl -N http://127.0.0.1:8000/                          # a line every 0.5 s, 20 lines
    curl -N 'http://127.0.0.1:8000/?lines=5&interval=0.1'

Press CTRL+C in the curl terminal part-way: the server's terminal prints how many lines were
sent at once, not after the 10 s the 20 lines would take.

There is no ``Content-Length``, so the server sends the body with chunked transfer coding,
each ``send()`` a chunk. The app notices a client that left in one of two ways:

1. ``receive()`` returns ``{"type": "http.disconnect"}``. A watcher task waits for it next to
   the producer in one nursery and cancels the nursery when it comes, which interrupts the
   producer wherever it is waiting (here, mostly in ``trio.sleep``).
2. ``send()`` raises :class:`OSError` once a write has failed (ASGI HTTP spec 2.4;
   trio-asgi raises :class:`trio_asgi.ClientDisconnected`, a subclass). This is the only
   way for an app that never calls ``receive()``; it also catches the client leaving
   between the watcher's turns.

Without either, the server still gives the app ``--disconnect-timeout`` seconds (default 3)
after the client left and then cancels it; an app that notices stops at once, and could
clean up.
"""

import sys
from typing import Any
from urllib.parse import parse_qs

import trio

LINES = 20  # lines in a response unless the query string says ?lines=N
INTERVAL = 0.5  # seconds between lines unless the query string says ?interval=S


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    settings = read_settings(scope["query_string"])
    if settings is None:
        await send_text(send, 400, b"lines must be an int >= 0, interval 0 to 3600 seconds\n")
        return
    lines, interval = settings
    sent = await stream_lines(receive, send, lines=lines, interval=interval)
    print(f"streaming: sent {sent} of {lines} lines", file=sys.stderr)


def read_settings(query_string: bytes) -> tuple[int, float] | None:
    """``(lines, interval)`` from ``?lines=N&interval=S``, or ``None`` if either is bad."""
    query = parse_qs(query_string.decode("latin-1"))
    try:
        lines = int(query.get("lines", [str(LINES)])[0])
        interval = float(query.get("interval", [str(INTERVAL)])[0])
    except ValueError:
        return None
    if lines < 0 or not 0 <= interval <= 3600:  # "not" so that a NaN interval is refused
        return None
    return lines, interval


async def stream_lines(receive: Any, send: Any, *, lines: int, interval: float) -> int:
    """Send ``line 1`` ... ``line <lines>``, ``interval`` seconds apart, as one response.

    Returns:
        how many lines ``send()`` accepted; fewer than ``lines`` when the client left.
    """
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    sent = 0
    async with trio.open_nursery() as nursery:
        # Way 1: the watcher cancels this nursery, and so the loop below, on http.disconnect.
        nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
        try:
            for number in range(1, lines + 1):
                if number > 1:
                    await trio.sleep(interval)
                body = f"line {number}\n".encode("ascii")
                await send({"type": "http.response.body", "body": body, "more_body": True})
                sent = number
        except OSError:
            # Way 2: a write failed, the client is gone; nothing more can reach it.
            nursery.cancel_scope.cancel()  # stop the watcher too
            return sent
        nursery.cancel_scope.cancel()  # every line is out: stop the watcher
    # Out of the nursery: every line was sent, or the watcher cancelled the loop. The response
    # ends here, after the watcher has stopped: once a response is complete, receive() returns
    # http.disconnect, and a watcher still running would take that for the client leaving.
    if sent == lines:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    return sent


async def cancel_on_disconnect(receive: Any, cancel_scope: trio.CancelScope) -> None:
    """Wait for ``http.disconnect``, then cancel ``cancel_scope``.

    ``receive()`` also returns the request body (``http.request`` messages); this app does
    not need it, so the watcher reads and drops it.
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel_scope.cancel()
            return


async def send_text(send: Any, status: int, body: bytes) -> None:
    """A whole ``text/plain`` response in two messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
