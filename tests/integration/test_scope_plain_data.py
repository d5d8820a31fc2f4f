"""Tier 3: an app on the real server can ``json.dumps(scope, default=bytes.decode)``.

The pure half, a property test over generated requests, is
``tests/proto/test_scope_plain_data.py``; this one checks what the server adds on a real
socket (the client and server addresses, the lifespan state, empty here) for HTTP and
WebSocket.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from ..helpers import start_server
from ..proto.test_scope_plain_data import non_plain
from ..websocket_tools import trio_websocket_client


async def dumping_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request and WebSocket session with its own scope as JSON."""
    if scope["type"] == "lifespan":
        return  # no lifespan: the state stays empty
    problems = non_plain(scope)
    text = json.dumps({"problems": problems, "scope": scope}, default=bytes.decode)
    if scope["type"] == "http":
        body = text.encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    else:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.close", "code": 1000})


async def test_http_scope_dumps_as_json_on_the_real_server(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, dumping_app)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/caf%C3%A9/x?q=%20a&b", headers={"x-one": "1"})
    await server.shutdown()
    dumped = response.json()
    assert dumped["problems"] == []
    scope = dumped["scope"]
    assert scope["path"] == "/café/x"
    assert scope["query_string"] == "q=%20a&b"
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == {}
    assert ["x-one", "1"] in scope["headers"]


async def test_websocket_scope_dumps_as_json_on_the_real_server(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, dumping_app)
    async with trio_websocket_client(server, "/chat?room=1", subprotocols=["chat"]) as ws:
        dumped = json.loads(await ws.get_message())
    await server.shutdown()
    assert dumped["problems"] == []
    scope = dumped["scope"]
    assert (scope["type"], scope["path"], scope["query_string"]) == ("websocket", "/chat", "room=1")
    assert scope["subprotocols"] == ["chat"]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == {}
