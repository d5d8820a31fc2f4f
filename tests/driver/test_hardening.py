"""Issue 4's limits and timeouts that live in the server core, one behaviour per test.

Timeouts run under ``autojump_clock`` (MockClock(autojump_threshold=0)), so each takes no
real time and the asserted durations are exact.
"""

from __future__ import annotations

import contextvars
import logging
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from trio_asgi import Config, LifespanFailure, LifespanShutdownFailure, serve

from ..helpers import H11Client, hello_app, parse_responses, read_until_eof, start_server
from ..http11_tools import (
    deadlock_guard,
    error_records,
    raw_request,
    read_body,
    respond,
    start_connection,
)

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID")
DATABASE: contextvars.ContextVar[str] = contextvars.ContextVar("DATABASE")


# -- request bodies ----------------------------------------------------------------------


async def test_body_read_timeout_gives_408(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend(await read_body(receive))

    served = await start_connection(nursery, app, body_read_timeout=4)
    await served.client.send_all(
        raw_request(b"POST", headers=[(b"Host", b"t"), (b"Content-Length", b"10")], body=b"abc")
    )
    started = trio.current_time()
    raw = await read_until_eof(served.client)
    assert trio.current_time() - started == pytest.approx(4)
    assert seen == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert error_records(caplog) == []


async def test_content_length_over_the_body_limit_is_refused_without_the_app(
    nursery: trio.Nursery,
) -> None:
    called: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append(scope["path"])

    served = await start_connection(nursery, app, max_request_body_size=100)
    await served.client.send_all(
        raw_request(b"POST", headers=[(b"Host", b"t"), (b"Content-Length", b"101")])
    )
    raw = await read_until_eof(served.client)
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert called == []


async def test_streamed_body_over_the_limit_gets_413_and_is_not_buffered(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend(await read_body(receive))

    served = await start_connection(nursery, app, max_request_body_size=1000)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"258\r\n" + b"x" * 600 + b"\r\n"  # 600 bytes a chunk
    await served.client.send_all(head + chunk + chunk + chunk + b"0\r\n\r\n")
    raw = await read_until_eof(served.client)
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert seen[-1] == {"type": "http.disconnect"}
    assert sum(len(m.get("body", b"")) for m in seen) <= 1000  # never more than the limit
    assert error_records(caplog) == []


async def test_body_within_the_limit_is_served(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b"".join(m.get("body", b"") for m in await read_body(receive))
        await respond(send, str(len(body)).encode())

    served = await start_connection(nursery, app, max_request_body_size=1000)
    response = await H11Client(served.client).request("POST", body=b"y" * 1000)
    assert (response.status, response.body) == (200, b"1000")


# -- connections -------------------------------------------------------------------------


async def test_max_requests_per_connection_closes_after_the_last(nursery: trio.Nursery) -> None:
    served = await start_connection(nursery, hello_app, max_requests_per_connection=2)
    await served.client.send_all(raw_request() + raw_request() + raw_request())
    raw = await read_until_eof(served.client)
    first, second = parse_responses(raw, ["GET", "GET"])  # the third is never answered
    assert first.header(b"connection") is None
    assert second.header(b"connection") == b"close"


async def test_tls_handshake_on_the_plain_port_is_closed_without_a_response(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    served = await start_connection(nursery, hello_app)
    client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64
    await served.client.send_all(client_hello)
    assert await read_until_eof(served.client) == b""
    await served.done.wait()
    assert error_records(caplog) == []


# -- lifespan ----------------------------------------------------------------------------


def lifespan_app(*, startup: trio.Event | None = None, shutdown: trio.Event | None = None) -> Any:
    """A lifespan that waits on ``startup``/``shutdown`` (None: completes at once)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            if startup is not None:
                await startup.wait()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            if shutdown is not None:
                await shutdown.wait()
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await hello_app(scope, receive, send)

    return app


async def test_lifespan_startup_timeout_is_a_startup_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = trio.current_time()
    with pytest.raises(LifespanFailure, match="within 7"):
        await serve(lifespan_app(startup=trio.Event()), Config(port=0, lifespan_startup_timeout=7))
    assert trio.current_time() - started == pytest.approx(7)


async def test_lifespan_shutdown_timeout_cancels_the_lifespan_task(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The shutdown is cancelled after lifespan_shutdown_timeout, and serve() reports it as
    a failed shutdown (the CLI's exit status 4)."""
    trigger = trio.Event()
    config = Config(port=0, lifespan_shutdown_timeout=5)
    with pytest.RaisesGroup(pytest.RaisesExc(LifespanShutdownFailure, match="within 5 s")):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve, shutdown_trigger=trigger.wait),
                lifespan_app(shutdown=trio.Event()),
                config,
            )
            before = trio.current_time()
            trigger.set()
    assert trio.current_time() - before == pytest.approx(5)
    assert any("did not complete within 5" in r.getMessage() for r in caplog.records)


# -- contextvars -------------------------------------------------------------------------


async def test_context_set_in_lifespan_startup_reaches_every_request(
    nursery: trio.Nursery,
) -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            DATABASE.set("connected")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append((DATABASE.get("missing"), REQUEST_ID.get("unset")))
        REQUEST_ID.set(scope["path"])  # must not leak into the next request
        await respond(send)

    server = await start_server(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        client = H11Client(stream)  # both requests on one keep-alive connection
        assert (await client.request(target="/first")).status == 200
        assert (await client.request(target="/second")).status == 200
    await server.shutdown()
    assert seen == [("connected", "unset"), ("connected", "unset")]
    assert DATABASE.get("missing") == "missing"  # nor into the test's own context


async def test_errors_name_the_client_and_the_request(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("boom")

    server = await start_server(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        response = await H11Client(stream).request(target="/broken?x=1")
        port = stream.socket.getsockname()[1]
    assert response.status == 500
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert '"GET /broken?x=1"' in record.getMessage()
    assert f"127.0.0.1:{port}" in record.getMessage()
    await server.shutdown()
