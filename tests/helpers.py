"""Shared test tools: a real server on port 0, a connection over memory streams, an h11 client.

- :data:`HTTP_PARSER` and :func:`make_config`: the request parser under test (set per test by
  the ``http_parser`` fixture in conftest.py) and a ``Config`` that asks for it.
- :func:`start_server`: ``serve(app, Config(port=0, ...))`` in the test's nursery, returning a
  :class:`RunningServer` with the bound port and a ``shutdown()`` that triggers graceful
  shutdown and waits for ``serve`` to return.
- :func:`open_connection`: one :class:`~trio_asgi._h11.connection.HTTP11Connection` driven over
  ``trio.testing.memory_stream_pair()``; the test holds the client end.
- :class:`H11Client`: builds request bytes with a real client-side h11 connection and reads
  responses back as h11 events, so driver tests never hand-parse HTTP.
- :func:`parse_responses`: the same for raw bytes already read up to the server's EOF.
- :func:`error_records`: what ``trio_asgi.error`` logged at ERROR or above.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import Config, _connection, serve
from trio_asgi._config import HTTPMode
from trio_asgi._context import ServerContext
from trio_asgi._h11.connection import HTTP11Connection
from trio_asgi._h11.settings import HTTP11Settings
from trio_asgi._types import ASGIApp

Headers = list[tuple[bytes, bytes]]

#: The HTTP/1.1 request parser (``Config.http``) the tools here ask for unless a test passes
#: ``http=`` itself. The autouse ``http_parser`` fixture (conftest.py) sets it for each test,
#: so every HTTP test runs once with h11 and once with httptools.
HTTP_PARSER: HTTPMode = "auto"


def make_config(**settings: Any) -> Config:
    """``Config(**settings)`` with ``http=HTTP_PARSER`` unless ``settings`` has ``http``."""
    return Config(**{"http": HTTP_PARSER, **settings})


@dataclass
class RunningServer:
    """A server started by :func:`start_server`."""

    host: str
    port: int
    _trigger: trio.Event
    _done: trio.Event

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def shutdown(self) -> None:
        """Begin graceful shutdown and wait until ``serve()`` has returned."""
        self._trigger.set()
        await self._done.wait()

    @property
    def stopped(self) -> bool:
        return self._done.is_set()


async def start_server(nursery: trio.Nursery, app: ASGIApp, **config: Any) -> RunningServer:
    """Serve ``app`` on 127.0.0.1 and an OS-chosen port; ``config`` is passed to ``Config``."""
    trigger = trio.Event()
    done = trio.Event()
    settings = make_config(**{"port": 0, **config})

    async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(app, settings, shutdown_trigger=trigger.wait, task_status=task_status)
        finally:
            done.set()

    addresses = await nursery.start(run)
    host, port = addresses[0]
    return RunningServer(host, port, trigger, done)


async def open_connection(
    nursery: trio.Nursery, app: ASGIApp, **config: Any
) -> tuple[trio.testing.MemoryStapledStream, HTTP11Connection]:  # type: ignore[name-defined]
    """Run one HTTP/1.1 connection over memory streams; returns (client end, connection)."""
    client, server = trio.testing.memory_stream_pair()
    context = ServerContext(app=app)
    settings = HTTP11Settings.from_config(make_config(**config))
    connection = _connection.open_connection(server, context, settings)
    nursery.start_soon(_connection.handle_connection, connection)
    return client, connection


@dataclass
class Response:
    """A whole response read by :class:`H11Client`."""

    status: int
    headers: Headers
    body: bytes
    http_version: bytes = b"1.1"
    informational: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class H11Client:
    """A client-side h11 connection over any trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    def request_bytes(
        self,
        method: str = "GET",
        target: str = "/",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> bytes:
        all_headers = [("host", "test"), *headers]
        if body is not None and not any(k.lower() == "transfer-encoding" for k, _ in all_headers):
            all_headers.append(("content-length", str(len(body))))
        out = self.conn.send(h11.Request(method=method, target=target, headers=all_headers)) or b""
        if body:
            out += self.conn.send(h11.Data(data=body)) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        return out

    async def request(self, *args: Any, **kwargs: Any) -> Response:
        """Send one request and read its whole response."""
        await self.stream.send_all(self.request_bytes(*args, **kwargs))
        return await self.read_response()

    async def read_response(self) -> Response:
        """Read events until the end of one response (1xx responses are collected)."""
        informational: list[int] = []
        head: h11.Response | None = None
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                return Response(
                    head.status_code,
                    list(head.headers),
                    bytes(body),
                    head.http_version,
                    informational,
                )
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("the server closed the connection before a full response")


async def read_until_eof(stream: trio.abc.ReceiveStream) -> bytes:
    """Every byte the peer sends until it closes its side."""
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The minimal app: ``Hello, world!`` with a Content-Length."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


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


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records ``trio_asgi.error`` logged at ERROR or above."""
    return [
        record
        for record in caplog.records
        if record.name == "trio_asgi.error" and record.levelno >= logging.ERROR
    ]
