"""Tier 3: examples/fastapi_app.py served by trio-asgi (FastAPI runs on Trio through AnyIO).

The example's own app (``create_app`` with the test's callbacks) on the real server, with
httpx, raw sockets and trio-websocket as clients: a path parameter and its validation, a JSON
body in and out, the lifespan state on ``request.state`` and ``websocket.state``, a
``BackgroundTask`` that runs after its response has arrived, a ``StreamingResponse`` whose
generator is closed when the client leaves, and a WebSocket route. The example's command in a
subprocess: tests/integration/test_examples_frameworks.py.
"""

from __future__ import annotations

import importlib.util
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from ..helpers import RunningServer, error_records, start_server
from ..websocket_tools import ws_url

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "example_fastapi_app", EXAMPLES / "fastapi_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


class Probe:
    """The example's two callbacks, as events the test waits on."""

    def __init__(self) -> None:
        self.stream_chunks: list[int] = []
        self.stream_ended = trio.Event()
        self.response_read = trio.Event()
        self.saved: list[Any] = []
        self.item_saved = trio.Event()

    def on_stream_end(self, chunks: int) -> None:
        self.stream_chunks.append(chunks)
        self.stream_ended.set()

    async def on_saved(self, item: Any) -> None:
        # Blocks the background task until the client has its response: had the task run
        # before the response was sent, the test would time out waiting for the response.
        await self.response_read.wait()
        self.saved.append(item)
        self.item_saved.set()


@pytest.fixture
async def probe() -> Probe:
    return Probe()


@pytest.fixture
async def server(nursery: trio.Nursery, probe: Probe) -> AsyncIterator[RunningServer]:
    app = example.create_app(on_stream_end=probe.on_stream_end, on_saved=probe.on_saved)
    running = await start_server(nursery, app, lifespan="on")
    yield running
    with trio.fail_after(TIMEOUT):
        await running.shutdown()


async def test_path_parameter_json_and_lifespan_state(server: RunningServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            item = await http.get("/items/7")
            invalid = await http.get("/items/seven")
            missing = await http.get("/nowhere")
    assert item.status_code == 200
    assert item.headers["content-type"] == "application/json"
    assert item.json() == {"id": 7, "name": "item 7", "greeting": "hello from the lifespan"}
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["path", "item_id"]
    assert missing.status_code == 404


async def test_json_body_in_and_out_and_the_background_task_after_the_response(
    server: RunningServer, probe: Probe
) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            created = await http.post("/items", json={"name": "pen", "price": 1.5})
            assert probe.saved == []  # the response came first
            probe.response_read.set()
            await probe.item_saved.wait()
            saved = await http.get("/saved")
            refused = await http.post("/items", json={"name": "pen"})
    assert created.status_code == 201
    assert created.json() == {"id": 1, "name": "pen", "price": 1.5}
    assert [item.id for item in probe.saved] == [1]
    assert saved.json() == [{"id": 1, "name": "pen", "price": 1.5}]
    assert refused.status_code == 422


async def leave_the_stream(server: RunningServer, probe: Probe) -> bytes:
    """Read ``/ticks`` until ``tick 2``, reset the connection, wait for the stream's end."""
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        await stream.send_all(b"GET /ticks HTTP/1.1\r\nHost: test\r\n\r\n")
        received = b""
        while b"tick 2\n" not in received:
            received += await stream.receive_some(65536)
        # A reset, as a killed client leaves: the server's next write fails at once.
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        await probe.stream_ended.wait()
    return received


async def test_streaming_response_generator_is_closed_when_the_client_leaves(
    server: RunningServer, probe: Probe
) -> None:
    received = await leave_the_stream(server, probe)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in received.lower()
    assert probe.stream_chunks[0] >= 3


async def test_a_client_leaving_a_stream_logs_no_error(
    server: RunningServer, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    # Starlette turns send()'s ClientDisconnected into its own ClientDisconnect, a plain
    # Exception, and lets it escape the app: the client left, which is not an error.
    await leave_the_stream(server, probe)
    assert error_records(caplog) == []


async def test_websocket_route_greets_with_lifespan_state_and_echoes(
    server: RunningServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(ws_url(server, "/ws")) as ws:
            greeting = await ws.get_message()
            await ws.send_message("hi")
            echoed = await ws.get_message()
            await ws.send_message("again")
            again = await ws.get_message()
    assert (greeting, echoed, again) == ("hello from the lifespan", "hi", "again")
