"""Tier 3: issue 4's limits and timeouts that live in the server core, one behaviour per test.

``serve()`` on loopback: lifespan timeouts and contextvars. The request-body and connection
limits are driver tests (tests/driver/test_hardening.py).

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

from ..helpers import H11Client, hello_app, start_server
from ..http11_tools import (
    respond,
)

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID")
DATABASE: contextvars.ContextVar[str] = contextvars.ContextVar("DATABASE")


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
