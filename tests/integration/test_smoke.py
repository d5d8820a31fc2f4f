"""Tier 3, the quickest whole-path check: a real server answers httpx (the memory-stream one
is tests/driver/test_smoke.py)."""

from __future__ import annotations

import httpx
import trio

from ..helpers import hello_app, start_server


async def test_real_server_answers_httpx(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "trio-asgi"
    await server.shutdown()
    assert server.stopped
