"""Tier 2: issue 9's HTTP/1.1 and lifecycle hardening, one behaviour per test.

Context isolation between requests, close-delimited requests followed by more bytes,
fairness under cheap input, real head sizes, keep-alive timers after a stall: the connection
driver over memory streams or a socket pair. The lifespan items, where ``serve()`` itself is
the point, are in tests/integration/test_hardening2.py.
"""

from __future__ import annotations

import contextvars
import socket
from typing import Any

import pytest
import trio
import trio.testing

from trio_asgi._h11.parsing import RequestParser
from trio_asgi._h11.settings import parser_factory

from ..helpers import parse_responses, read_until_eof
from ..http11_tools import deadlock_guard, finish, raw_request, respond, start_connection

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID")
HOST = (b"Host", b"t")
WS_UPGRADE = raw_request(
    target=b"/ws",
    headers=[
        HOST,
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"Sec-WebSocket-Version", b"13"),
    ],
)


# -- context variables (item 6) ------------------------------------------------------------


async def _record_and_set(seen: list[tuple[str, str]], scope: dict[str, Any]) -> None:
    seen.append((scope["path"], REQUEST_ID.get("unset")))
    REQUEST_ID.set(f"secret-of-{scope['path']}")


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "keep-alive"])
async def test_each_request_starts_from_a_clean_context(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, pipelined: bool
) -> None:
    """A ContextVar one request's app sets is not seen by the next request on the same
    connection, whether that request was pipelined (its task is spawned from inside the
    previous app's final send()) or sent after the response."""
    deadlock_guard(nursery)
    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _record_and_set(seen, scope)
        await respond(send)

    served = await start_connection(nursery, app)
    requests = [
        raw_request(target=b"/A", headers=[HOST]),
        raw_request(target=b"/B", headers=[HOST]),
    ]
    if pipelined:
        await served.client.send_all(b"".join(requests))
    else:
        for request in requests:
            await served.client.send_all(request)
            await trio.testing.wait_all_tasks_blocked()
    await served.client.send_eof()
    responses = parse_responses(await read_until_eof(served.client), ["GET", "GET"])
    await finish(served)
    assert [r.status for r in responses] == [200, 200]
    assert seen == [("/A", "unset"), ("/B", "unset")]


async def test_a_websocket_after_a_pipelined_request_starts_from_a_clean_context(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _record_and_set(seen, scope)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # refused: a 403
            return
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(target=b"/A", headers=[HOST]) + WS_UPGRADE)
    raw = await read_until_eof(served.client)
    await finish(served)
    assert [r.status for r in parse_responses(raw, ["GET", "GET"])] == [200, 403]
    assert seen == [("/A", "unset"), ("/ws", "unset")]


# -- max_header_size counts the real bytes (item 9) ----------------------------------------


def _compact_head(size: int) -> bytes:
    """A request head of exactly ``size`` bytes, mostly ``a:b`` lines (5 bytes each)."""
    start, end = b"GET / HTTP/1.1\r\nHost:t\r\n", b"\r\n"
    lines, rest = divmod(size - len(start) - len(end), 5)
    head = start + b"a:b\r\n" * (lines - 1) + b"p:" + b"x" * (rest + 1) + b"\r\n" + end
    assert len(head) == size
    return head


@pytest.mark.parametrize(("size", "status"), [(13_666, 200), (16_384, 200), (16_385, 431)])
async def test_max_header_size_is_measured_in_real_bytes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, size: int, status: int
) -> None:
    """A compact head (``a:b`` lines) is measured as the bytes it has, not estimated per
    header: up to ``max_header_size`` (16 KiB) it is served, one byte more gets 431."""
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(_compact_head(size))
    await served.client.send_eof()
    raw = await read_until_eof(served.client)
    await finish(served)
    [response] = parse_responses(raw)
    assert response.status == status


# -- a close-delimited request keeps its answer (item 5) -----------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(raw_request(headers=[HOST], http_version=b"1.0"), id="http-1.0"),
        pytest.param(raw_request(headers=[HOST, (b"Connection", b"close")]), id="connection-close"),
    ],
)
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(raw_request(target=b"/pipelined", headers=[HOST]), id="pipelined-get"),
        pytest.param(b"\r\n", id="stray-crlf"),
        pytest.param(b"\x00garbage", id="garbage"),
    ],
)
async def test_bytes_after_a_close_delimited_request_are_ignored(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    request_bytes: bytes,
    extra: bytes,
) -> None:
    """RFC 9112 section 9.6: a request that closes the connection is answered, then the
    connection closes; bytes that follow it while the app works are ignored, never a 400."""
    deadlock_guard(nursery)
    release = trio.Event()
    paths: list[str] = []
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await release.wait()
        messages.append(await receive())  # the (empty) body, not a disconnect
        await respond(send, b"answered")

    served = await start_connection(nursery, app)
    await served.client.send_all(request_bytes)
    await trio.testing.wait_all_tasks_blocked()
    await served.client.send_all(extra)
    await trio.testing.wait_all_tasks_blocked()  # the reader has read the extra bytes
    release.set()
    raw = await read_until_eof(served.client)
    await finish(served)
    [response] = parse_responses(raw)
    assert (response.status, response.body) == (200, b"answered")
    assert paths == ["/"]
    assert messages == [{"type": "http.request", "body": b"", "more_body": False}]


# -- fairness under cheap input (item 7) ---------------------------------------------------


class _OneByteEvents:
    """A request parser (the seam ``ServerContext.new_parser``) that gives each body byte
    as its own event, as h11 did for a body of one-byte chunks."""

    def __init__(self, inner: RequestParser) -> None:
        self._inner = inner
        self._queue: list[bytes] = []
        self.delivered = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def next_event(self) -> Any:
        if not self._queue:
            event = self._inner.next_event()
            if type(event) is not bytes or len(event) <= 1:
                return event
            self._queue = [event[i : i + 1] for i in range(len(event) - 1, -1, -1)]
        self.delivered += 1
        return self._queue.pop()


async def test_the_reader_lets_other_tasks_run_while_it_handles_many_events(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, http_parser: str
) -> None:
    """10,000 body events from one read: other tasks run long before the last is handled."""
    deadlock_guard(nursery)
    size = 10_000
    parsers: list[_OneByteEvents] = []
    seen_by_other_task: list[int] = []
    done = trio.Event()

    def new_parser(max_header_size: int) -> Any:
        parsers.append(_OneByteEvents(parser_factory(http_parser)(max_header_size)))
        return parsers[-1]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received = 0
        while received < size:
            received += len((await receive())["body"])
        done.set()
        await respond(send)

    async def other_task() -> None:
        while not done.is_set():
            if parsers:
                seen_by_other_task.append(parsers[0].delivered)
            await trio.lowlevel.checkpoint()

    served = await start_connection(nursery, app, new_parser=new_parser)
    nursery.start_soon(other_task)
    body = b"x" * size
    await served.client.send_all(
        raw_request(b"POST", headers=[HOST, (b"Content-Length", str(size).encode())], body=body)
    )
    await done.wait()
    await finish(served)
    assert any(0 < delivered < size for delivered in seen_by_other_task)


# -- timers after a stall (item 10) ----------------------------------------------------------


class _StallAfterIOWait(trio.abc.Instrument):
    """Once armed: right after Trio's next poll for I/O, the client's bytes arrive and the
    clock jumps past every deadline, before Trio expires deadlines. That is what a process
    stopped and resumed (SIGSTOP/SIGCONT, a paused VM) sees: the poll's timeout ran out, so
    it reported nothing, while the request arrived during the stall."""

    def __init__(self, clock: trio.testing.MockClock, client: socket.socket) -> None:
        self.clock = clock
        self.client = client
        self.arrivals: list[bytes] = []
        self.stall = 0.0

    def arm(self, data: bytes, stall: float) -> None:
        self.arrivals.append(data)
        self.stall = stall

    def after_io_wait(self, timeout: float) -> None:
        if self.arrivals:
            self.client.send(self.arrivals.pop())
            self.clock.jump(self.stall)


async def _stalled_connection(
    nursery: trio.Nursery, clock: trio.testing.MockClock, app: Any
) -> tuple[socket.socket, _StallAfterIOWait, Any]:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # a TCP pair on loopback
        client_sock = socket.create_connection(listener.getsockname())
        server_sock, _ = listener.accept()
    server = trio.SocketStream(trio.socket.from_stdlib_socket(server_sock))
    client = trio.SocketStream(trio.socket.from_stdlib_socket(client_sock))

    def pair() -> tuple[Any, Any]:
        return client, server

    served = await start_connection(
        nursery, app, pair=pair, keep_alive_timeout=5, request_header_timeout=10
    )
    instrument = _StallAfterIOWait(clock, client_sock)
    trio.lowlevel.add_instrument(instrument)
    return client_sock, instrument, served


async def test_a_request_that_arrived_during_a_stall_is_served_not_reset(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The keep-alive deadline came due during the stall, but the next request had arrived
    in time: it is served, not answered with a close (or a reset)."""
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send, scope["path"].encode())

    _, instrument, served = await _stalled_connection(nursery, autojump_clock, app)
    try:
        await served.client.send_all(raw_request(target=b"/one", headers=[HOST]))
        [first] = parse_responses(await served.client.receive_some(4096))
        await trio.testing.wait_all_tasks_blocked()  # idle, its keep-alive timer running
        instrument.arm(raw_request(target=b"/two", headers=[HOST]), stall=60)
        [second] = parse_responses(await served.client.receive_some(4096))
    finally:
        trio.lowlevel.remove_instrument(instrument)
    await finish(served)
    assert (first.body, second.body) == (b"/one", b"/two")


async def test_a_head_completed_during_a_stall_is_served_not_408(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The head had begun; its rest arrived during a stall that outlasted
    request_header_timeout: the head arrived in time, so the request is served."""
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send, b"served")

    _, instrument, served = await _stalled_connection(nursery, autojump_clock, app)
    try:
        await served.client.send_all(b"GET / HTTP/1.1\r\n")
        await trio.testing.wait_all_tasks_blocked()  # the head timer runs
        instrument.arm(b"Host: t\r\n\r\n", stall=60)
        [response] = parse_responses(await served.client.receive_some(4096))
    finally:
        trio.lowlevel.remove_instrument(instrument)
    await finish(served)
    assert (response.status, response.body) == (200, b"served")


async def test_a_head_still_incomplete_after_a_stall_gets_408(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """What arrived during the stall is read, but the head is still not complete: the head
    timeout stands (no extension for a client that keeps trickling bytes)."""
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send)

    _, instrument, served = await _stalled_connection(nursery, autojump_clock, app)
    try:
        await served.client.send_all(b"GET / HTTP/1.1\r\n")
        await trio.testing.wait_all_tasks_blocked()
        instrument.arm(b"Host: t\r\n", stall=60)
        [response] = parse_responses(await read_until_eof(served.client))
    finally:
        trio.lowlevel.remove_instrument(instrument)
    await finish(served)
    assert response.status == 408


# -- graceful shutdown closes idle connections with a lingering close (item 12) ------------


async def test_an_idle_connection_closed_by_shutdown_drains_instead_of_resetting(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Shutdown sends an idle keep-alive connection a FIN and then reads what the client
    still sends (a request that crossed the close) until its EOF: the client sees EOF,
    never a reset."""
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send)

    _, instrument, served = await _stalled_connection(nursery, autojump_clock, app)
    trio.lowlevel.remove_instrument(instrument)  # a real TCP pair, no stall here
    await served.client.send_all(raw_request(headers=[HOST]))
    [response] = parse_responses(await served.client.receive_some(4096))
    await trio.testing.wait_all_tasks_blocked()  # idle
    served.context.shutting_down = True
    served.connection.begin_shutdown()
    assert await served.client.receive_some(4096) == b""  # our FIN
    # The client's next request crossed the FIN: it is read and dropped, not refused.
    await served.client.send_all(raw_request(target=b"/crossed", headers=[HOST]))
    await trio.testing.wait_all_tasks_blocked()
    await served.client.send_eof()
    await served.done.wait()
    assert await served.client.receive_some(4096) == b""  # no ECONNRESET
    await served.client.aclose()
    assert response.status == 200
