"""Tier 3: examples/litestar_app.py served by trio-asgi (Litestar runs on Trio through AnyIO).

The example's app on the real server: the lifespan's state at startup and its exit at
graceful shutdown, a path parameter and its validation, a dataclass JSON body in and out, a
404, and a ``websocket_listener``, with nothing logged at ERROR. The example's command in a
subprocess: tests/integration/test_examples_frameworks.py.
"""

from __future__ import annotations

import importlib.util
import sys
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
    path = EXAMPLES / "litestar_app.py"
    spec = importlib.util.spec_from_file_location("example_litestar_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Litestar resolves the handlers' type hints through it
    spec.loader.exec_module(module)
    return module


example = load_example()


async def test_routes_json_and_the_lifespan(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start_server(nursery, example.app, lifespan="on")
        assert example.app.state.stopped is False
        async with httpx.AsyncClient(base_url=server.url) as http:
            item = await http.get("/items/7")
            invalid = await http.get("/items/seven")
            created = await http.post("/items", json={"name": "pen", "price": 1.5})
            refused = await http.post("/items", json={"name": "pen"})
            missing = await http.get("/nowhere")
        await server.shutdown()
    assert item.status_code == 200
    assert item.json() == {"id": 7, "greeting": "hello from the lifespan"}
    assert invalid.status_code == 404  # the int path type does not match "seven"
    assert created.status_code == 201
    assert created.json() == {"id": 1, "name": "pen", "price": 1.5}
    assert refused.status_code == 400
    assert missing.status_code == 404
    assert example.app.state.stopped is True
    assert error_records(caplog) == []


async def test_websocket_listener(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start_server(nursery, example.app, lifespan="on")
        async with open_websocket_url(ws_url(server, "/ws")) as ws:
            await ws.send_message("hello")
            first = await ws.get_message()
            await ws.send_message("trio")
            second = await ws.get_message()
        await server.shutdown()
    assert (first, second) == ("HELLO", "TRIO")
    assert error_records(caplog) == []
