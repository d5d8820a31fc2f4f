"""Tools for the HTTP/1.1 driver tests (tests/driver/test_http11*.py), beside tests/helpers.py.

- :func:`start_connection`: like ``helpers.open_connection``, but also takes the lifespan
  ``state`` and the stream pair factory (``lockstep_stream_pair`` for backpressure tests), and
  returns a :class:`Served` whose ``done`` event is set when ``handle_connection`` returns.
- :func:`read_body`, :func:`respond`: the two things most inline test apps do.
- :func:`parse_responses`: split raw server bytes into responses with a client-side h11.
- :func:`error_records`: the ``trio_asgi.error`` records at ERROR or above.
- :func:`finish`: close the client's end and wait for the connection to end.
- :func:`deadlock_guard`: under ``autojump_clock``, turn a hang into a failure.
- :class:`FailingStream` and :func:`failing_pair`: a server end that raises on cue, for
  fault injection through the stream instead of patching the driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio
import trio.lowlevel
import trio.testing

from trio_asgi._connection import handle_connection, open_connection
from trio_asgi._context import ServerContext
from trio_asgi._h11.connection import HTTP11Connection
from trio_asgi._h11.parsing import RequestParser
from trio_asgi._h11.settings import HTTP11Settings
from trio_asgi._types import ASGIApp

from .helpers import Response, make_config
from .helpers import error_records as error_records  # re-exported for the driver tests
from .helpers import parse_responses as parse_responses  # re-exported for the driver tests

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
    new_parser: Callable[[int], RequestParser] | None = None,
    **config: Any,
) -> Served:
    """Run ``handle_connection(open_connection(server_end, context, settings))`` in
    ``nursery``: one HTTP/1.1 connection, as ``serve()`` runs it.

    ``new_parser`` replaces the request parser factory (a seam for fault injection).
    """
    client, server = pair()
    context = ServerContext(app=app, state=state or {})
    settings = HTTP11Settings.from_config(make_config(**config))
    if new_parser is not None:
        settings = dataclasses.replace(settings, new_parser=new_parser)
    connection = open_connection(server, context, settings)
    done = trio.Event()

    async def run() -> None:
        try:
            await handle_connection(connection)
        finally:
            done.set()

    nursery.start_soon(run)
    return Served(client, connection, context, done)


class WaitsUntilCancelled:
    """An ASGI app that waits for ever; ``cancelled_at`` gets the (trio) time its task was
    cancelled, once per call."""

    def __init__(self) -> None:
        self.cancelled_at: list[float] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.cancelled_at.append(trio.current_time())


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
    """Close the client's end and wait until the connection's ``handle_connection`` has returned.

    Closing ends a lingering close at once, so tests need not wait out ``LINGER_TIMEOUT``.
    """
    await served.client.aclose()
    await served.done.wait()


class FailingStream(trio.abc.HalfCloseableStream):
    """A stream that passes everything to ``inner`` except that each of its first
    ``receive_some`` calls raises the next exception of ``failures`` instead (popped from
    the front): a fault on cue where the driver reads, without touching the driver."""

    def __init__(self, inner: trio.abc.HalfCloseableStream, failures: list[BaseException]):
        self.inner = inner
        self.failures = failures

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.failures:
            await trio.lowlevel.checkpoint()
            raise self.failures.pop(0)
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


def failing_pair(*failures: BaseException) -> StreamPair:
    """A ``pair`` for :func:`start_connection`: memory streams whose server end's first
    reads raise ``failures``, one per read, in order."""

    def pair() -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
        client, server = trio.testing.memory_stream_pair()
        return client, FailingStream(server, list(failures))

    return pair


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


def header_values(response: Response, name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower-case) in ``response``, in order."""
    return [value for key, value in response.headers if key == name]
