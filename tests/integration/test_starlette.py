"""Tier 3: a real Starlette application served by trio-asgi (Starlette runs on Trio via anyio).

Covers what framework users rely on: routing, JSON, request bodies larger than the server's
read-ahead buffer, the lifespan context manager and its state, streaming responses and
disconnect detection, and the 500 page for an exception.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..helpers import RunningServer, start_server

TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


class Probe:
    """What the app records for the test, and the events the two meet on."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.stream_finished = trio.Event()
        self.handler_waiting = trio.Event()
        self.client_gone = trio.Event()
        self.disconnect_checks: list[bool] = []
        self.disconnect_checked = trio.Event()


def build_app(probe: Probe) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        probe.log.append("startup")
        yield {"greeting": "hello from lifespan"}
        probe.log.append("shutdown")

    async def home(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    async def user(request: Request) -> Response:
        return JSONResponse(
            {"id": request.path_params["user_id"], "q": request.query_params.get("q")}
        )

    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"size": len(body), "distinct": sorted(set(body.decode()))})

    async def stream(request: Request) -> Response:
        async def numbers() -> AsyncIterator[bytes]:
            n = 0
            try:
                while True:
                    if await request.is_disconnected():
                        probe.log.append("stream saw disconnect")
                        return
                    yield f"{n}\n".encode()
                    n += 1
            finally:
                probe.log.append("stream finally")
                probe.stream_finished.set()

        return StreamingResponse(numbers(), media_type="text/plain")

    async def wait_for_disconnect(request: Request) -> Response:
        await request.body()
        probe.disconnect_checks.append(await request.is_disconnected())
        probe.handler_waiting.set()
        await probe.client_gone.wait()
        probe.disconnect_checks.append(await request.is_disconnected())
        probe.disconnect_checked.set()
        return PlainTextResponse("nobody will read this")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom from a Starlette endpoint")

    return Starlette(
        routes=[
            Route("/", home),
            Route("/users/{user_id:int}", user),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
            Route("/wait", wait_for_disconnect),
            Route("/boom", boom),
        ],
        lifespan=lifespan,
    )


@pytest.fixture
async def probe() -> Probe:
    return Probe()


@pytest.fixture
async def server(nursery: trio.Nursery, probe: Probe) -> AsyncIterator[RunningServer]:
    running = await start_server(nursery, build_app(probe))
    yield running
    with trio.fail_after(TIMEOUT):
        await running.shutdown()  # graceful, so lifespan shutdown runs after every test
    assert probe.log[-1] == "shutdown"


async def test_routes_json_and_lifespan_state(server: RunningServer, probe: Probe) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            home = await http.get("/")
            user = await http.get("/users/42", params={"q": "trio"})
            missing = await http.get("/nowhere")
        await server.shutdown()
    assert home.status_code == 200
    assert home.text == "hello from lifespan"
    assert user.status_code == 200
    assert user.headers["content-type"] == "application/json"
    assert user.json() == {"id": 42, "q": "trio"}
    assert missing.status_code == 404
    assert probe.log == ["startup", "shutdown"]


async def test_post_reads_a_body_larger_than_the_read_buffer(server: RunningServer) -> None:
    payload = b"abc" * 100_000  # 300 kB: several reads and backpressure on the server side
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.post("/echo", content=payload)
            wrong_method = await http.get("/echo")
    assert response.status_code == 200
    assert response.json() == {"size": len(payload), "distinct": ["a", "b", "c"]}
    assert wrong_method.status_code == 405


async def test_streaming_response_stops_when_the_client_leaves(
    server: RunningServer, probe: Probe
) -> None:
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            received = b""
            while b"\r\n0\n" not in received:
                received += await stream.receive_some(65536)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        await probe.stream_finished.wait()
    assert probe.log[-1] == "stream finally"


async def test_is_disconnected_turns_true_after_the_client_left(
    server: RunningServer, probe: Probe
) -> None:
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(b"GET /wait HTTP/1.1\r\nHost: test\r\n\r\n")
            await probe.handler_waiting.wait()
        # Let the server read the EOF before the handler asks again.
        await trio.testing.wait_all_tasks_blocked()
        probe.client_gone.set()
        await probe.disconnect_checked.wait()
    assert probe.disconnect_checks == [False, True]


async def test_exception_in_endpoint_gives_500_and_serving_goes_on(
    server: RunningServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            failed = await http.get("/boom")
            after = await http.get("/users/7")
    assert failed.status_code == 500
    assert failed.text == "Internal Server Error"
    assert after.status_code == 200
    assert json.loads(after.text) == {"id": 7, "q": None}


async def test_hard_stop_of_a_starlette_app_logs_no_error(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    # Starlette answers the cancellation of its lifespan with "lifespan.shutdown.failed";
    # the server must let the Cancelled through instead of raising on that message.
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery, build_app(probe))
            async with httpx.AsyncClient() as http:
                assert (await http.get(server.url + "/")).status_code == 200
            nursery.cancel_scope.cancel()
    assert probe.log == ["startup"]  # a hard stop runs no lifespan shutdown
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
