"""Tools for the HTTP/1.1 driver tests (tests/test_http11*.py), beside tests/helpers.py.

- :func:`start_connection`: like ``helpers.open_connection``, but also takes the lifespan
  ``state`` and the stream pair factory (``lockstep_stream_pair`` for backpressure tests), and
  returns a :class:`Served` whose ``done`` event is set when ``HTTP11Connection.run`` returns.
- :func:`read_body`, :func:`respond`: the two things most inline test apps do.
- :func:`parse_responses`: split raw server bytes into responses with a client-side h11.
- :func:`error_records`: the ``trio_asgi.error`` records at ERROR or above.
- :func:`finish`: close the client's end and wait for the connection to end.
- :func:`deadlock_guard`: under ``autojump_clock``, turn a hang into a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import Config
from trio_asgi._context import ServerContext
from trio_asgi._http11 import HTTP11Connection
from trio_asgi._types import ASGIApp

from .helpers import Response

#: A valid ``http.response.start`` with no headers (the body is then chunked).
START_200: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}

StreamPair = Callable[[], tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]]


@dataclass
class Served:
    """One connection under test: the client's end, the driver, its context and its end."""

    client: trio.abc.HalfCloseableStream
    connection: HTTP11Connection
    context: ServerContext
    done: trio.Event


async def start_connection(
    nursery: trio.Nursery,
    app: ASGIApp,
    *,
    state: dict[str, Any] | None = None,
    pair: StreamPair = trio.testing.memory_stream_pair,
    **config: Any,
) -> Served:
    """Run ``HTTP11Connection(server_end, context).run()`` in ``nursery``."""
    client, server = pair()
    context = ServerContext(app=app, config=Config(**config), state=state or {})
    connection = HTTP11Connection(server, context)
    done = trio.Event()

    async def run() -> None:
        try:
            await connection.run()
        finally:
            done.set()

    nursery.start_soon(run)
    return Served(client, connection, context, done)


def deadlock_guard(nursery: trio.Nursery, seconds: float = 1000.0) -> None:
    """Fail the test if it is still running after ``seconds`` of (virtual) time.

    Under ``autojump_clock`` a test whose awaited event never comes would otherwise wait for
    ever; this deadline is what the clock jumps to instead, long after every timeout tested.
    """

    async def bark() -> None:
        await trio.sleep(seconds)
        raise TimeoutError(f"the test was still waiting after {seconds} s")

    nursery.start_soon(bark)


async def finish(served: Served) -> None:
    """Close the client's end and wait until the connection's ``run()`` has returned.

    Closing ends a lingering close at once, so tests need not wait out ``LINGER_TIMEOUT``.
    """
    await served.client.aclose()
    await served.done.wait()


def raw_request(
    method: bytes = b"GET",
    target: bytes = b"/",
    headers: Iterable[tuple[bytes, bytes]] = ((b"Host", b"test"),),
    body: bytes = b"",
    http_version: bytes = b"1.1",
) -> bytes:
    """Request bytes exactly as written; no header is added, not even Content-Length."""
    lines = [method + b" " + target + b" HTTP/" + http_version]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def read_body(receive: Any) -> list[dict[str, Any]]:
    """Every message up to the one with ``more_body`` False (or an ``http.disconnect``)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


async def respond(
    send: Any,
    body: bytes = b"ok",
    status: int = 200,
    headers: Iterable[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a whole response; with ``headers=None`` a Content-Length is added."""
    if headers is None:
        headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def parse_responses(raw: bytes, methods: Iterable[str] = ("GET",)) -> list[Response]:
    """Parse ``raw`` (everything the server sent, up to its EOF) as one response per method.

    Raises:
        AssertionError: ``raw`` holds more than those responses.
        h11.RemoteProtocolError: the bytes are not a valid sequence of responses, or end in
            the middle of one.
    """
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(raw)
    conn.receive_data(b"")
    responses = []
    for method in methods:
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("host", "test")]))
        conn.send(h11.EndOfMessage())
        informational: list[int] = []
        head: h11.Response | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                responses.append(
                    Response(
                        head.status_code,
                        list(head.headers),
                        bytes(body),
                        head.http_version,
                        informational,
                    )
                )
                break
            else:
                raise AssertionError(f"unexpected event {event!r} after {len(responses)}")
    leftover = conn.trailing_data[0]
    if leftover:
        raise AssertionError(f"bytes after response {len(responses)}: {leftover[:60]!r}")
    return responses


def header_values(response: Response, name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower-case) in ``response``, in order."""
    return [value for key, value in response.headers if key == name]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records ``trio_asgi.error`` logged at ERROR or above."""
    return [
        record
        for record in caplog.records
        if record.name == "trio_asgi.error" and record.levelno >= logging.ERROR
    ]
