"""Tier 2, the quickest whole-path check: one connection over memory streams (the real
socket one is tests/integration/test_smoke.py)."""

from __future__ import annotations

import trio

from ..helpers import H11Client, hello_app, open_connection


async def test_memory_connection_serves_keep_alive_requests(nursery: trio.Nursery) -> None:
    stream, _ = await open_connection(nursery, hello_app)
    client = H11Client(stream)
    for _ in range(3):
        response = await client.request()
        assert response.status == 200
        assert response.body == b"Hello, world!"
