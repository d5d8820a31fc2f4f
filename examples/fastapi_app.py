"""A FastAPI app served by trio-asgi: FastAPI runs on Trio through AnyIO, as it is.

Run it from the repository root (``pip install fastapi`` first)::

    trio-asgi --app-dir examples fastapi_app:app

and, in another terminal::

    curl http://127.0.0.1:8000/items/7                      # {"id": 7, "name": "item 7", ...}
    curl -d '{"name": "pen", "price": 1.5}' -H 'Content-Type: application/json' \\
        http://127.0.0.1:8000/items                         # the item back, with its id
    curl http://127.0.0.1:8000/saved                        # what the background tasks saved
    curl -N http://127.0.0.1:8000/ticks                     # tick 0, tick 1, ... until CTRL+C
    python -m websockets ws://127.0.0.1:8000/ws             # an echo, with a greeting first

What it shows:

- ``/items/{item_id}``: a path parameter, validated as an ``int`` (``/items/x`` is a 422).
- ``POST /items``: a JSON body in (a pydantic model) and out; a ``BackgroundTask`` saves the
  item *after* the response has been sent, and ``/saved`` lists what was saved.
- ``/ticks``: a ``StreamingResponse`` from an endless async generator. When the client
  leaves, the server's ``send()`` raises ``trio_asgi.ClientDisconnected`` (an ``OSError``,
  ASGI spec 2.4) and Starlette stops iterating. Starlette does not close the generator
  itself (the garbage collector would, some time later), so the endpoint gets it from a
  dependency with ``yield`` that closes it once the response is over: its ``finally`` runs
  as soon as the client has left.
- ``/ws``: a WebSocket route that greets, then echoes each text message until the client
  closes.
- ``lifespan``: state set up at startup (the dict it yields) reaches every request as
  ``request.state`` and every WebSocket as ``websocket.state``.

``create_app()`` takes two optional callbacks, called when a stream ends and when a
background task has saved an item; the tests pass their own to see these happen.
"""

import itertools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict

from fastapi import BackgroundTasks, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

logger = logging.getLogger("fastapi_app")

#: Called with the number of chunks sent, once a ``/ticks`` stream has ended.
StreamEnded = Callable[[int], None]
#: Awaited with the item, by the background task, once it has saved it.
ItemSaved = Callable[["Item"], Awaitable[None]]


class NewItem(BaseModel):
    name: str
    price: float


class Item(NewItem):
    id: int


class State(TypedDict):
    """What the lifespan sets up; each request sees it as ``request.state``."""

    greeting: str
    saved: list[Item]
    ids: "itertools.count[int]"


def log_stream_end(chunks: int) -> None:
    logger.info("a /ticks client left after %d chunks", chunks)


async def log_saved(item: Item) -> None:
    logger.info("saved item %d", item.id)


def create_app(
    *, on_stream_end: StreamEnded = log_stream_end, on_saved: ItemSaved = log_saved
) -> FastAPI:
    """The app; ``on_stream_end`` and ``on_saved`` are the two callbacks described above."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        yield {"greeting": "hello from the lifespan", "saved": [], "ids": itertools.count(1)}

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, request: Request) -> dict[str, Any]:
        return {"id": item_id, "name": f"item {item_id}", "greeting": request.state.greeting}

    @app.post("/items", status_code=201)
    async def create_item(new: NewItem, request: Request, tasks: BackgroundTasks) -> Item:
        item = Item(id=next(request.state.ids), **new.model_dump())
        tasks.add_task(save, item, request.state.saved)
        return item

    async def save(item: Item, saved: list[Item]) -> None:
        saved.append(item)
        await on_saved(item)

    @app.get("/saved")
    async def list_saved(request: Request) -> list[Item]:
        saved: list[Item] = request.state.saved
        return saved

    async def tick_lines() -> AsyncIterator[AsyncGenerator[bytes, None]]:
        """A dependency with ``yield``: its exit runs once the response is over, sent or not."""

        async def lines() -> AsyncGenerator[bytes, None]:
            sent = 0
            try:
                for n in itertools.count():
                    yield f"tick {n}\n".encode()
                    sent += 1
            finally:
                on_stream_end(sent)

        stream = lines()
        try:
            yield stream
        finally:
            # Starlette stops iterating when send() fails but leaves the generator open (to
            # the garbage collector); closing it here runs its finally at once.
            await stream.aclose()

    @app.get("/ticks")
    async def ticks(
        lines: Annotated[AsyncGenerator[bytes, None], Depends(tick_lines)],
    ) -> StreamingResponse:
        return StreamingResponse(lines, media_type="text/plain")

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.greeting)
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass  # the client closed: nothing is left to do

    return app


app = create_app()
