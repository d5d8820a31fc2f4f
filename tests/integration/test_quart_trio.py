"""Tier 3: examples/quart_trio_app.py served by trio-asgi (Quart-Trio: Quart on Trio).

The example's app on the real server: lifespan (``before_serving``) at startup, a route with a
path parameter, a JSON body in and out, a 404, a WebSocket echo of text and bytes, and a
graceful shutdown after the WebSocket client left, with nothing logged at ERROR. The
example's command in a subprocess: tests/integration/test_examples_frameworks.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from ..helpers import error_records, start_server
from ..websocket_tools import ws_url

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


def load_example() -> ModuleType:
    path = EXAMPLES / "quart_trio_app.py"
    spec = importlib.util.spec_from_file_location("example_quart_trio_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


async def test_routes_json_and_lifespan_startup(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    example.app.config.pop("STARTED", None)
    with trio.fail_after(TIMEOUT):
        server = await start_server(nursery, example.app, lifespan="on")
        async with httpx.AsyncClient(base_url=server.url) as http:
            hello = await http.get("/hello/trio")
            echoed = await http.post("/echo", json={"a": [1, 2]})
            missing = await http.get("/nowhere")
        await server.shutdown()
    assert hello.status_code == 200
    assert hello.headers["content-type"] == "application/json"
    assert hello.json() == {"hello": "trio", "started": True}
    assert echoed.json() == {"you sent": {"a": [1, 2]}}
    assert missing.status_code == 404
    assert error_records(caplog) == []


async def test_websocket_echo_then_graceful_shutdown(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start_server(nursery, example.app, lifespan="on")
        async with open_websocket_url(ws_url(server, "/ws")) as ws:
            await ws.send_message("hello")
            text = await ws.get_message()
            await ws.send_message(b"\x00\xff")
            data = await ws.get_message()
        # The client has closed; the handler, blocked in receive(), must end for the
        # graceful shutdown to return.
        await server.shutdown()
    assert (text, data) == ("hello", b"\x00\xff")
    assert error_records(caplog) == []
