"""Tier 3: a connection storm is accepted in batches, not one connection per scheduler pass.

Trio's ``accept()`` yields after every connection, so under load each new connection used
to wait for a whole pass of the scheduler over the busy ones (a storm of 256 took seconds to
be answered, `bench/storm.py`). The accept loop now takes, after each awaited accept, the
connections already waiting without a checkpoint. ``max_connections`` still answers the
connections past it with 503 at once, during a storm too.
"""

from __future__ import annotations

import socket
from typing import Any

import trio
import trio.lowlevel
import trio.testing

from trio_asgi._net.listeners import ACCEPT_BATCH

from ..helpers import hello_app, parse_responses, start_server

STORM = 32  # connections opened at once: fewer than ACCEPT_BATCH


class _Passes(trio.abc.Instrument):
    """Counts the scheduler's passes (one I/O wait each) and the pass in which each
    connection task was spawned."""

    def __init__(self) -> None:
        self.passes = 0
        self.spawned_in: list[int] = []

    def before_io_wait(self, timeout: float) -> None:
        self.passes += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if task.name == "trio-asgi connection":
            self.spawned_in.append(self.passes)


def _connect_all(port: int, count: int) -> list[socket.socket]:
    """``count`` connections made by the kernel (the listener's backlog holds them) before
    the server runs again: no checkpoint in between."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


async def test_a_storm_of_waiting_connections_is_accepted_in_one_pass(
    nursery: trio.Nursery,
) -> None:
    assert STORM < ACCEPT_BATCH
    server = await start_server(nursery, hello_app)
    await trio.testing.wait_all_tasks_blocked()  # the accept loop waits for a connection
    passes = _Passes()
    trio.lowlevel.add_instrument(passes)
    try:
        clients = _connect_all(server.port, STORM)
        while len(passes.spawned_in) < STORM:
            await trio.lowlevel.checkpoint()
    finally:
        trio.lowlevel.remove_instrument(passes)
    for client in clients:
        client.close()
    await server.shutdown()
    # One pass for the awaited accept, the next for the batch (trio's accept yields once).
    assert max(passes.spawned_in) - min(passes.spawned_in) <= 1


async def test_max_connections_refuses_at_once_during_a_storm(nursery: trio.Nursery) -> None:
    """With 4 slots held by requests in progress, 12 more connections arriving at once each
    get 503 while the 4 are still held: the accept loop never waits for a slot."""
    release = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        await release.wait()
        await hello_app(scope, receive, send)

    server = await start_server(nursery, app, max_connections=4)
    held = [await trio.open_tcp_stream(server.host, server.port) for _ in range(4)]
    for stream in held:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()  # the four apps wait
    storm = _connect_all(server.port, 12)
    statuses = []
    for client in storm:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(client))
        raw = b""
        while chunk := await stream.receive_some(4096):
            raw += chunk
        statuses += [response.status for response in parse_responses(raw)]
        await stream.aclose()
    assert statuses == [503] * 12
    assert not release.is_set()  # all answered while the four were still held
    release.set()
    for stream in held:
        [response] = parse_responses(await stream.receive_some(4096))
        assert response.status == 200
        await stream.aclose()
    await server.shutdown()
