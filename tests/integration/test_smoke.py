"""The quickest whole-path checks: one request over memory streams and one over a real socket."""

from __future__ import annotations

import httpx
import trio

from ..helpers import H11Client, hello_app, open_connection, start_server


async def test_memory_connection_serves_keep_alive_requests(nursery: trio.Nursery) -> None:
    stream, _ = await open_connection(nursery, hello_app)
    client = H11Client(stream)
    for _ in range(3):
        response = await client.request()
        assert response.status == 200
        assert response.body == b"Hello, world!"


async def test_real_server_answers_httpx(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "trio-asgi"
    await server.shutdown()
    assert server.stopped
