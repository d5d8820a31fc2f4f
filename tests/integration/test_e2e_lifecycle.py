"""Tier 3: the server's life end to end: lifespan, graceful shutdown, hard stop, binding.

Each test runs :func:`trio_asgi.serve` on loopback and watches it from outside with real
sockets and httpx. Orders of events are recorded in lists by the apps; waits meet on
:class:`trio.Event` and are bounded by :func:`trio.fail_after`; the only real time spent is
the small ``graceful_timeout`` a test configures on purpose.
"""

from __future__ import annotations

import errno
import logging
import socket
from functools import partial
from typing import Any

import h11
import httpx
import pytest
import trio
import trio.testing

from trio_asgi import Config, LifespanFailure, serve

from ..helpers import H11Client, hello_app, make_config, read_until_eof, start_server

TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


# -- tools ---------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on now, for tests that must know it before ``serve`` binds."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def open_raw(host: str, port: int) -> tuple[trio.SocketStream, socket.socket]:
    """Connect; returns the trio stream and the stdlib socket under it (to :func:`peek`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    trio_sock = trio.socket.from_stdlib_socket(sock)
    await trio_sock.connect((host, port))
    return trio.SocketStream(trio_sock), sock


def peek(sock: socket.socket) -> bytes | None:
    """What the server has sent and we have not read; ``None``: nothing, ``b""``: EOF."""
    try:
        return sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None


async def assert_refused(host: str, port: int) -> None:
    """Nothing accepts connections on ``(host, port)``."""
    with trio.socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        await sock.connect((host, port))


def parse_one_response(raw: bytes) -> tuple[h11.Response, bytes]:
    """Parse the response to one GET from bytes that end with the server's EOF."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "test")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    head: h11.Response | None = None
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected {event!r} while reading a response")
    assert head is not None
    assert type(conn.next_event()) is h11.ConnectionClosed
    return head, body


async def send_text(send: Any, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def run_lifespan(
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    log: list[str],
    *,
    state: dict[str, Any] | None = None,
    startup_gate: tuple[trio.Event, trio.Event] | None = None,
) -> None:
    """A well-behaved lifespan handler that records ``startup`` and ``shutdown`` in ``log``.

    ``startup_gate``: ``(entered, release)``; startup sets ``entered`` and waits for ``release``.
    """
    message = await receive()
    assert message["type"] == "lifespan.startup"
    if startup_gate is not None:
        entered, release = startup_gate
        entered.set()
        await release.wait()
    scope["state"].update(state or {})
    log.append("startup")
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    log.append("shutdown")
    await send({"type": "lifespan.shutdown.complete"})


def server_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trio_asgi.error" and r.levelno == level]


# -- lifespan ------------------------------------------------------------------------------


async def test_startup_state_is_copied_into_each_request_scope(nursery: trio.Nursery) -> None:
    log: list[str] = []
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(scope, receive, send, log, state={"db": "connected", "n": 1})
            return
        seen.append(dict(scope["state"]))
        scope["state"]["leak"] = "from the first request"  # only this request's copy
        scope["state"]["n"] = 2
        await send_text(send, scope["state"]["db"].encode())

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            first = await http.get("/")
            second = await http.get("/")
        await server.shutdown()
    assert first.text == second.text == "connected"
    assert seen == [{"db": "connected", "n": 1}, {"db": "connected", "n": 1}]
    assert log == ["startup", "shutdown"]


async def test_no_request_is_served_before_startup_completes(nursery: trio.Nursery) -> None:
    log: list[str] = []
    entered, release = trio.Event(), trio.Event()
    running: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(scope, receive, send, log, startup_gate=(entered, release))
            return
        log.append("request")
        await send_text(send, b"ok")

    async def launch(port: int) -> None:
        running.append(await start_server(nursery, app, port=port))

    port = free_port()
    nursery.start_soon(launch, port)
    with trio.fail_after(TIMEOUT):
        await entered.wait()
        # The socket is bound already, so the kernel takes the connection; the server must
        # not read the request until startup is complete.
        stream, sock = await open_raw("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            await trio.testing.wait_all_tasks_blocked()
            assert log == []
            assert peek(sock) is None
            assert running == []
            release.set()
            raw = await read_until_eof(stream)
        head, body = parse_one_response(raw)
        assert (head.status_code, body) == (200, b"ok")
        assert log == ["startup", "request"]
        (server,) = running
        await server.shutdown()
    assert log == ["startup", "request", "shutdown"]


async def test_lifespan_shutdown_runs_after_the_last_connection_closed(
    nursery: trio.Nursery,
) -> None:
    log: list[str] = []
    in_flight, release = trio.Event(), trio.Event()
    idle_sockets: list[socket.socket] = []
    idle_at_shutdown: list[bytes | None] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            log.append("startup")
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            log.append("shutdown")
            idle_at_shutdown.append(peek(idle_sockets[0]))  # the server has closed it
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/slow":
            log.append("slow request")
            in_flight.set()
            await release.wait()
            await send_text(send, b"slow")
            log.append("slow response sent")
        else:
            await send_text(send, b"quick")

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        idle_stream, idle_sock = await open_raw(server.host, server.port)
        idle_sockets.append(idle_sock)
        async with idle_stream:  # kept open (unread EOF) until serve() has returned
            async with await trio.open_tcp_stream(server.host, server.port) as busy:
                idle = H11Client(idle_stream)
                assert (await idle.request()).body == b"quick"  # now idle in keep-alive
                await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
                await in_flight.wait()
                nursery.start_soon(server.shutdown)
                await trio.testing.wait_all_tasks_blocked()
                assert "shutdown" not in log  # a request is still in flight
                release.set()
                _, body = parse_one_response(await read_until_eof(busy))
                assert body == b"slow"
            await server.shutdown()
    assert log == ["startup", "slow request", "slow response sent", "shutdown"]
    assert idle_at_shutdown == [b""]


async def test_startup_failed_raises_lifespan_failure_and_nothing_listens() -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})

    port = free_port()
    with trio.fail_after(TIMEOUT), pytest.raises(LifespanFailure) as info:
        await serve(app, Config(port=port))
    assert info.value.message == "no database"
    assert "no database" in str(info.value)
    assert calls == ["lifespan"]
    await assert_refused("127.0.0.1", port)


async def raises_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app written without lifespan support: it raises on any scope it does not know."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']!r}")
    await hello_app(scope, receive, send)


async def test_auto_mode_serves_an_app_that_raises_on_lifespan(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    server = await start_server(nursery, raises_on_lifespan, lifespan="auto")
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as http:
            response = await http.get(server.url)
        await server.shutdown()
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    lifespan_lines = [
        r for r in server_records(caplog, logging.INFO) if "lifespan" in r.getMessage().lower()
    ]
    assert len(lifespan_lines) == 1
    assert "unsupported scope type" in lifespan_lines[0].getMessage()
    assert server_records(caplog, logging.ERROR) == []
    assert server_records(caplog, logging.WARNING) == []


async def test_on_mode_app_that_raises_on_lifespan_is_a_lifespan_failure() -> None:
    port = free_port()
    with trio.fail_after(TIMEOUT), pytest.raises(LifespanFailure) as info:
        await serve(raises_on_lifespan, Config(port=port, lifespan="on"))
    assert "RuntimeError" in info.value.message
    assert "unsupported scope type 'lifespan'" in info.value.message
    await assert_refused("127.0.0.1", port)


async def test_off_mode_never_calls_the_app_with_lifespan(nursery: trio.Nursery) -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        await raises_on_lifespan(scope, receive, send)

    server = await start_server(nursery, app, lifespan="off")
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient() as http:
            response = await http.get(server.url)
        await server.shutdown()
    assert response.status_code == 200
    assert calls == ["http"]


# -- graceful shutdown ---------------------------------------------------------------------


async def test_graceful_shutdown_refuses_new_finishes_busy_and_closes_idle(
    nursery: trio.Nursery,
) -> None:
    in_flight, release = trio.Event(), trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            in_flight.set()
            await release.wait()
        await send_text(send, scope["path"].encode())

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        idle_stream = await trio.open_tcp_stream(server.host, server.port)
        unused = await trio.open_tcp_stream(server.host, server.port)
        busy = await trio.open_tcp_stream(server.host, server.port)
        async with idle_stream, unused, busy:
            idle = H11Client(idle_stream)
            first = await idle.request()
            assert first.body == b"/"
            assert first.header(b"connection") is None  # kept alive
            await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            await in_flight.wait()
            await trio.testing.wait_all_tasks_blocked()  # every connection is accepted

            nursery.start_soon(server.shutdown)
            # Idle keep-alive connections, used or not, are closed; by then the listener
            # is closed too.
            assert await read_until_eof(idle_stream) == b""
            assert await read_until_eof(unused) == b""
            await assert_refused(server.host, server.port)
            assert not server.stopped  # the request in flight holds serve() open

            release.set()
            head, body = parse_one_response(await read_until_eof(busy))
        assert head.status_code == 200
        assert body == b"/slow"
        assert (b"connection", b"close") in [(k.lower(), v) for k, v in head.headers]
        await server.shutdown()
    assert server.stopped


async def test_graceful_timeout_cancels_a_request_that_never_finishes(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    graceful_timeout = 0.3
    in_flight = trio.Event()
    cancelled_at: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        in_flight.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled_at.append(trio.current_time())
            raise

    server = await start_server(nursery, app, graceful_timeout=graceful_timeout)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            await in_flight.wait()
            shutdown_at = trio.current_time()
            await server.shutdown()
            raw = await read_until_eof(stream)
    assert server.stopped
    assert len(cancelled_at) == 1
    assert cancelled_at[0] - shutdown_at >= graceful_timeout
    assert not raw.startswith(b"HTTP/1.1 2")  # never a success for a cancelled request
    assert any(
        "Graceful shutdown timed out" in r.getMessage()
        for r in server_records(caplog, logging.WARNING)
    )


async def test_hard_stop_cancels_everything_and_skips_lifespan_shutdown() -> None:
    log: list[str] = []
    in_flight = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            try:
                await run_lifespan(scope, receive, send, log)
            except trio.Cancelled:
                log.append("lifespan cancelled")
                raise
            return
        in_flight.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            log.append("request cancelled")
            raise

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as server_nursery:
            server = await start_server(server_nursery, app)
            stream = await trio.open_tcp_stream(server.host, server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            await in_flight.wait()
            server_nursery.cancel_scope.cancel()
        async with stream:
            raw = await read_until_eof(stream)
    assert server.stopped
    assert raw == b""
    assert sorted(log) == ["lifespan cancelled", "request cancelled", "startup"]
    assert "shutdown" not in log


# -- binding and embedding -----------------------------------------------------------------


async def test_port_already_in_use_raises_oserror_before_startup() -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    taken = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = taken[0].socket.getsockname()[1]
        with trio.fail_after(TIMEOUT), pytest.raises(OSError, match="in use") as info:
            await serve(app, Config(port=port))
    finally:
        for listener in taken:
            await listener.aclose()
    assert info.value.errno == errno.EADDRINUSE
    assert calls == []  # startup never ran


async def test_nursery_start_returns_the_bound_addresses() -> None:
    stop = trio.Event()
    returned: list[object] = []

    async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        returned.append(
            await serve(
                hello_app, make_config(port=0), shutdown_trigger=stop.wait, task_status=task_status
            )
        )

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(run)
            assert isinstance(addresses, list)
            ((host, port),) = addresses
            assert host == "127.0.0.1"
            assert isinstance(port, int)
            assert port > 0
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://{host}:{port}/")
            assert response.text == "Hello, world!"
            stop.set()
    assert returned == [None]  # graceful shutdown makes serve() return normally


async def test_nursery_start_serve_directly_then_hard_stop() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            ((host, port),) = await nursery.start(serve, hello_app, make_config(port=0))
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://{host}:{port}/")
            nursery.cancel_scope.cancel()
    assert response.status_code == 200
    await assert_refused(host, port)


def test_trio_run_serve_until_the_shutdown_trigger() -> None:
    log: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(scope, receive, send, log)

    async def shut_down_at_once() -> None:
        await trio.lowlevel.checkpoint()

    config = Config(port=0)
    result = trio.run(partial(serve, app, config, shutdown_trigger=shut_down_at_once))
    assert result is None
    assert log == ["startup", "shutdown"]
