"""A Quart-Trio app served by trio-asgi: Quart on Trio, an ASGI 3 app that needs no bridge.

Run it from the repository root (``pip install quart-trio`` first)::

    trio-asgi --app-dir examples quart_trio_app:app

and, in another terminal::

    curl http://127.0.0.1:8000/hello/trio                    # {"hello": "trio", ...}
    curl -d '{"a": 1}' -H 'Content-Type: application/json' \\
        http://127.0.0.1:8000/echo                           # {"you sent": {"a": 1}}
    python -m websockets ws://127.0.0.1:8000/ws              # an echo of each message

Quart-Trio is Quart with Trio instead of asyncio, so its handlers may use Trio itself
(``trio.sleep``, nurseries). Plain Quart runs on asyncio and needs ``--loop asyncio``.
``before_serving`` and ``after_serving`` run in the ASGI lifespan, at startup and at
graceful shutdown.
"""

from typing import Any

from quart import request, websocket
from quart_trio import QuartTrio

app = QuartTrio(__name__)


@app.before_serving
async def startup() -> None:
    app.config["STARTED"] = True


@app.get("/hello/<name>")
async def hello(name: str) -> dict[str, Any]:
    return {"hello": name, "started": app.config.get("STARTED", False)}


@app.post("/echo")
async def echo() -> dict[str, Any]:
    return {"you sent": await request.get_json()}


@app.websocket("/ws")
async def ws() -> None:
    while True:
        await websocket.send(await websocket.receive())
