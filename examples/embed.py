"""Run trio-asgi inside your own Trio program instead of from the ``trio-asgi`` command.

Run it from the repository root::

    python examples/embed.py            # way 2: start, ask itself one request, shut down, exit
    python examples/embed.py --forever  # way 1: serve http://127.0.0.1:8000 until CTRL+C

Way 1, the whole program is the server::

    trio.run(serve, app)

``serve`` runs until it is cancelled. CTRL+C then raises :class:`KeyboardInterrupt` inside
``trio.run`` (wrapped in an exception group, as Trio does for exceptions that cross a
nursery), which cancels everything at once: the hard stop, with no graceful shutdown and no
lifespan shutdown. ``--forever`` passes a ``shutdown_trigger`` that returns at the first
CTRL+C instead, so that one shuts down gracefully; a second CTRL+C, during the shutdown, is
the hard stop. The ``trio-asgi`` command does the same for SIGINT and SIGTERM.

Way 2, the server is one task among yours (:func:`main`). ``nursery.start`` returns once the
sockets listen, with the addresses they are bound to, so ``port=0`` (any free port) works.
The server shuts down gracefully when ``await shutdown_trigger()`` returns, here when an
event is set; ``serve`` then returns and the nursery can close::

    root nursery (main)
    ├── serve(app, Config(port=0), shutdown_trigger=stop.wait)
    └── (main's own body): fetch one page from the server, then stop.set()

The library logs to the ``trio_asgi.error`` and ``trio_asgi.access`` loggers and installs no
handlers; ``logging.basicConfig`` below makes those lines visible.
"""

import logging
import signal
import sys
from collections.abc import MutableMapping
from functools import partial
from typing import Any

import trio

from trio_asgi import Config, serve

BODY = b"Hello from an embedded server!\n"


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
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


async def main() -> str:
    """Serve ``app`` on a free port, fetch ``/`` from it, shut down gracefully.

    Returns:
        the body of the response.
    """
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        # nursery.start passes positional arguments only; partial carries the keyword one.
        addresses = await nursery.start(
            partial(serve, shutdown_trigger=stop.wait), app, Config(port=0)
        )
        host, port = addresses[0]
        print(f"serving on http://{host}:{port}")
        text = await fetch(host, port)
        print(f"GET / answered: {text!r}")
        stop.set()  # graceful shutdown: serve() returns once every connection is closed
    print("the server has stopped")
    return text


async def fetch(host: str, port: int) -> str:
    """``GET /`` with httpx if it is installed, else over a raw Trio socket."""
    try:
        import httpx
    except ImportError:
        return await fetch_with_socket(host, port)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{host}:{port}/")
        response.raise_for_status()
        return response.text


async def fetch_with_socket(host: str, port: int) -> str:
    """``GET /`` by hand: write the request bytes, read until the server closes.

    ``Connection: close`` asks the server to close after the response, so the end of the
    stream is the end of the response. The answer must be a 200 with a plain body (no
    chunked coding), as :func:`app` gives.
    """
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode("ascii"))
        received = bytearray()
        while chunk := await stream.receive_some(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if not status_line.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"unexpected response: {status_line!r}")
    return body.decode("utf-8")


async def first_ctrl_c() -> None:
    """Return at the first SIGINT: a ``shutdown_trigger`` for a graceful CTRL+C.

    Leaving the ``with`` block restores Python's handler, so a second CTRL+C raises
    :class:`KeyboardInterrupt` and stops the server at once.
    """
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if "--forever" in sys.argv[1:]:
        # Config() defaults: http://127.0.0.1:8000
        trio.run(partial(serve, app, shutdown_trigger=first_ctrl_c))
    else:
        trio.run(main)
