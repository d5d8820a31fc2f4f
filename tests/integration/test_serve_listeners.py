"""Tier 3: ``serve(..., listeners=...)`` serves sockets bound by someone else, and what
``nursery.start(serve, ...)`` reports: one :class:`trio_asgi.TCPAddress` per listener."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
import trio

from trio_asgi import Config, ListenAddress, TCPAddress, serve

from ..helpers import hello_app


async def test_serve_takes_pre_bound_listeners_and_closes_them(nursery: trio.Nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    stop = trio.Event()
    done = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        # port=1 in the config: never bound, the listeners are served instead.
        config = Config(port=1, lifespan="off")
        await serve(
            hello_app, config, shutdown_trigger=stop.wait, listeners=listeners,
            task_status=task_status,
        )  # fmt: skip
        done.set()

    addresses: list[ListenAddress] = await nursery.start(run)
    assert addresses == [TCPAddress("127.0.0.1", port)]
    assert type(addresses[0]) is TCPAddress
    host, bound_port = addresses[0]  # a tuple: unpacks as (host, port)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{host}:{bound_port}/")
    assert response.text == "Hello, world!"
    stop.set()
    await done.wait()
    assert listeners[0].socket.fileno() == -1  # serve() took ownership and closed it


async def test_addresses_from_config_are_tcp_addresses(nursery: trio.Nursery) -> None:
    addresses = await nursery.start(partial(serve, hello_app, Config(port=0, lifespan="off")))
    [address] = addresses
    assert isinstance(address, TCPAddress)
    assert (address.host, address.port > 0) == ("127.0.0.1", True)
    nursery.cancel_scope.cancel()


async def test_a_listener_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"listeners must be trio\.SocketListener"):
        await serve(hello_app, Config(), listeners=["127.0.0.1:8000"])  # type: ignore[list-item]
