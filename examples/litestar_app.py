"""A Litestar app served by trio-asgi: Litestar runs on Trio through AnyIO, as it is.

Run it from the repository root (``pip install litestar`` first)::

    trio-asgi --app-dir examples litestar_app:app

and, in another terminal::

    curl http://127.0.0.1:8000/items/7                        # {"id": 7, "greeting": ...}
    curl -d '{"name": "pen", "price": 1.5}' -H 'Content-Type: application/json' \\
        http://127.0.0.1:8000/items                           # the item back, with its id
    python -m websockets ws://127.0.0.1:8000/ws               # each message, upper-cased

What it shows: a path parameter typed ``int`` (``/items/x`` matches no route: 404), a
dataclass as the JSON body in and out (a missing field is a 400), a ``websocket_listener``
(Litestar calls it with each message and sends back what it returns), and a lifespan
context manager whose state reaches each handler as ``state``; its exit (at graceful
shutdown) sets ``app.state.stopped``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, get, post, websocket_listener
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody


@dataclass
class NewItem:
    name: str
    price: float


@dataclass
class Item:
    id: int
    name: str
    price: float


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    app.state.greeting = "hello from the lifespan"
    app.state.next_id = 1
    app.state.stopped = False
    try:
        yield
    finally:
        app.state.stopped = True


@get("/items/{item_id:int}")
async def read_item(item_id: FromPath[int], state: State) -> dict[str, Any]:
    return {"id": item_id, "greeting": state.greeting}


@post("/items")
async def create_item(data: JSONBody[NewItem], state: State) -> Item:
    item = Item(id=state.next_id, name=data.name, price=data.price)
    state.next_id += 1
    return item


@websocket_listener("/ws")
async def shout(data: str) -> str:
    return data.upper()


app = Litestar([read_item, create_item, shout], lifespan=[lifespan])
