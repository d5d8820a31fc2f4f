"""Tier 2: the HTTP/1.1 driver when the client leaves, time passes, or the server shuts down.

Client disconnects as ``receive()`` and ``send()`` see them, the disconnect and keep-alive
timeouts (under ``autojump_clock``), and ``HTTP11Connection.begin_shutdown()``.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from trio_asgi import ClientDisconnected
from trio_asgi._h11.reader import LINGER_TIMEOUT

from ..helpers import H11Client, hello_app, read_until_eof
from ..http11_tools import (
    START_200,
    WaitsUntilCancelled,
    deadlock_guard,
    error_records,
    finish,
    parse_responses,
    raw_request,
    read_body,
    respond,
    start_connection,
)

# -- client disconnects ------------------------------------------------------------------


async def test_receive_returns_disconnect_when_the_client_closes(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[dict[str, Any]] = []
    waiting = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages.append(await receive())  # the (empty) body
        waiting.set()
        for _ in range(3):
            messages.append(await receive())

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    await waiting.wait()
    await trio.testing.wait_all_tasks_blocked()
    await served.client.aclose()
    await served.done.wait()
    assert messages == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
        {"type": "http.disconnect"},
        {"type": "http.disconnect"},
    ]
    assert error_records(caplog) == []  # returning after a disconnect is not an error


async def test_receive_mid_body_returns_disconnect_when_the_client_closes(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages.extend(await read_body(receive))

    served = await start_connection(nursery, app)
    await served.client.send_all(
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Content-Length", b"10")], b"abc")
    )
    await trio.testing.wait_all_tasks_blocked()
    await served.client.aclose()
    await served.done.wait()
    assert messages == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert error_records(caplog) == []


async def test_receive_in_a_cancelled_scope_returns_queued_events_without_raising(
    nursery: trio.Nursery,
) -> None:
    body_queued = trio.Event()
    disconnect_queued = trio.Event()
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await body_queued.wait()
        with trio.CancelScope() as scope_:
            scope_.cancel()
            messages.append(await receive())  # would raise Cancelled if it checkpointed
        await disconnect_queued.wait()
        with trio.CancelScope() as scope_:
            scope_.cancel()
            messages.append(await receive())
            messages.append(await receive())

    served = await start_connection(nursery, app)
    await served.client.send_all(
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Content-Length", b"5")], b"hello")
    )
    await trio.testing.wait_all_tasks_blocked()
    body_queued.set()
    await trio.testing.wait_all_tasks_blocked()
    await served.client.aclose()
    await trio.testing.wait_all_tasks_blocked()
    disconnect_queued.set()
    await served.done.wait()
    assert messages == [
        {"type": "http.request", "body": b"hello", "more_body": False},
        {"type": "http.disconnect"},
        {"type": "http.disconnect"},
    ]


async def test_receive_after_the_response_returns_disconnect(nursery: trio.Nursery) -> None:
    after: list[dict[str, Any]] = []
    app_done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await respond(send)
        after.append(await receive())
        after.append(await receive())
        app_done.set()

    served = await start_connection(nursery, app)
    client = H11Client(served.client)
    assert (await client.request()).status == 200
    await app_done.wait()  # while the client is still connected
    assert after == [{"type": "http.disconnect"}, {"type": "http.disconnect"}]
    assert not served.done.is_set()


@pytest.mark.parametrize("app_catches", [True, False])
async def test_send_after_the_client_left_raises_client_disconnected(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, app_catches: bool
) -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        assert await receive() == {"type": "http.disconnect"}
        try:
            await send(START_200)
            await send({"type": "http.response.body", "body": b"too late", "more_body": True})
        except OSError as exc:
            errors.append(exc)
            if not app_catches:
                raise
        # Once a write failed, every later send() fails the same way.
        with pytest.raises(ClientDisconnected):
            await send({"type": "http.response.body", "body": b"still too late"})

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    await trio.testing.wait_all_tasks_blocked()
    await served.client.aclose()
    await served.done.wait()
    [error] = errors
    assert isinstance(error, ClientDisconnected)
    assert error_records(caplog) == []


async def test_app_ignoring_disconnect_is_cancelled_after_disconnect_timeout(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlock_guard(nursery)
    app = WaitsUntilCancelled()

    served = await start_connection(nursery, app, disconnect_timeout=7.5)
    await served.client.send_all(raw_request())
    await trio.testing.wait_all_tasks_blocked()
    closed_at = trio.current_time()
    await served.client.aclose()
    await served.done.wait()
    [cancelled] = app.cancelled_at
    assert cancelled - closed_at == pytest.approx(7.5)
    assert error_records(caplog) == []


async def test_app_working_after_its_response_is_not_cut_short_by_a_disconnect(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    finished = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send)
        await trio.sleep(60)  # background work, well past disconnect_timeout
        finished.set()

    served = await start_connection(nursery, app, disconnect_timeout=1)
    assert (await H11Client(served.client).request()).status == 200
    await served.client.aclose()
    await served.done.wait()
    assert finished.is_set()


# -- keep-alive timeout ------------------------------------------------------------------


async def test_idle_keep_alive_connection_closes_after_keep_alive_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    served = await start_connection(nursery, hello_app, keep_alive_timeout=7)
    client = H11Client(served.client)
    await trio.sleep(5)  # idle for less than the timeout before the first request
    assert (await client.request()).status == 200
    idle_since = trio.current_time()
    assert await read_until_eof(served.client) == b""
    assert trio.current_time() - idle_since == pytest.approx(7)
    await served.done.wait()


async def test_connection_that_never_sends_closes_after_keep_alive_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    opened_at = trio.current_time()
    served = await start_connection(nursery, hello_app, keep_alive_timeout=7)
    assert await read_until_eof(served.client) == b""
    assert trio.current_time() - opened_at == pytest.approx(7)
    await served.done.wait()


async def test_slow_request_head_gets_408_after_request_header_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # The slowloris defence: the head has request_header_timeout seconds from its first
    # byte, however the client paces it (keep_alive_timeout no longer applies once it began).
    deadlock_guard(nursery)
    served = await start_connection(
        nursery, hello_app, keep_alive_timeout=2, request_header_timeout=7
    )
    first_byte_at: list[float] = []

    async def trickle() -> None:
        try:
            for byte in raw_request(headers=[(b"Host", b"t"), (b"X-Slow", b"x" * 50)]):
                await served.client.send_all(bytes([byte]))
                first_byte_at.append(trio.current_time())
                await trio.sleep(1)  # a slow client, one byte a (virtual) second
        except trio.BrokenResourceError:
            return  # the server hung up on us, as it should

    nursery.start_soon(trickle)
    raw = await read_until_eof(served.client)
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in raw.lower()
    assert trio.current_time() - first_byte_at[0] == pytest.approx(7)
    await served.done.wait()


async def test_busy_connection_outlives_keep_alive_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await trio.sleep(60)
        await respond(send, b"late")

    served = await start_connection(nursery, slow_app, keep_alive_timeout=7)
    client = H11Client(served.client)
    assert (await client.request()).body == b"late"
    assert (await client.request()).body == b"late"


async def test_disconnect_is_seen_after_the_keep_alive_deadline_passed_mid_request(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # The keep-alive deadline set before the request comes due while the app works; the
    # reader must go on reading, so the client's leaving still reaches the app at once.
    deadlock_guard(nursery)
    seen: list[tuple[str, float]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"
        await trio.sleep(20)  # past the 7 s keep-alive deadline
        message = await receive()
        seen.append((message["type"], trio.current_time()))

    served = await start_connection(nursery, app, keep_alive_timeout=7)
    await served.client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.sleep(30)
    closed_at = trio.current_time()
    await served.client.aclose()
    await served.done.wait()
    assert seen == [("http.disconnect", closed_at)]


# -- graceful shutdown -------------------------------------------------------------------


@pytest.mark.parametrize("served_before", [True, False], ids=["after-a-request", "fresh"])
async def test_begin_shutdown_closes_an_idle_connection_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, served_before: bool
) -> None:
    """The FIN goes out at once; it is a lingering close, so the connection ends when the
    client closes its side too (a request crossing the FIN is drained, not reset)."""
    deadlock_guard(nursery)
    served = await start_connection(nursery, hello_app)
    if served_before:
        assert (await H11Client(served.client).request()).status == 200
    await trio.testing.wait_all_tasks_blocked()
    assert served.connection.is_idle
    before = trio.current_time()
    served.connection.begin_shutdown()
    assert await read_until_eof(served.client) == b""
    assert trio.current_time() == before
    await served.client.aclose()
    await served.done.wait()
    assert trio.current_time() == before


async def test_begin_shutdown_stops_draining_a_silent_client_after_the_linger_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    served = await start_connection(nursery, hello_app)
    await trio.testing.wait_all_tasks_blocked()
    before = trio.current_time()
    served.connection.begin_shutdown()
    assert await read_until_eof(served.client) == b""
    await served.done.wait()  # the client never closed its side
    assert trio.current_time() - before == pytest.approx(LINGER_TIMEOUT)


async def test_begin_shutdown_lets_a_busy_connection_finish_with_connection_close(
    nursery: trio.Nursery,
) -> None:
    release = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await release.wait()
        await respond(send, b"finished")

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request() + raw_request())  # one pipelined behind it
    await trio.testing.wait_all_tasks_blocked()
    assert not served.connection.is_idle
    served.connection.begin_shutdown()
    await trio.testing.wait_all_tasks_blocked()
    assert not served.done.is_set()

    release.set()
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.body == b"finished"
    assert response.header(b"connection") == b"close"


async def test_begin_shutdown_while_the_head_is_held_still_sends_connection_close(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # begin_shutdown() promises: "A response whose head has not been written yet carries
    # Connection: close". The head is held until the first body message, so this one has
    # not been written when shutdown begins; without the header the client may send its
    # next request on a connection the server is about to close.
    deadlock_guard(nursery)
    release = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)
        await release.wait()
        await send({"type": "http.response.body", "body": b"finished"})

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    await trio.testing.wait_all_tasks_blocked()
    served.connection.begin_shutdown()
    release.set()
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.body == b"finished"
    assert response.header(b"connection") == b"close"


async def test_begin_shutdown_with_a_partial_request_buffered_serves_it_then_closes(
    nursery: trio.Nursery,
) -> None:
    served = await start_connection(nursery, hello_app)
    request = raw_request()
    await served.client.send_all(request[:10])
    await trio.testing.wait_all_tasks_blocked()
    assert not served.connection.is_idle
    served.connection.begin_shutdown()
    await served.client.send_all(request[10:])
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 200
    assert response.header(b"connection") == b"close"


async def test_a_close_near_the_keep_alive_deadline_still_lingers_for_the_linger_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # The keep-alive deadline set before the request is stale while the app works on it;
    # the lingering close that follows the response gets its own LINGER_TIMEOUT, not
    # whatever was left of that stale deadline.
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await trio.sleep(4.5)  # the keep-alive deadline (5 s) is 0.5 s away
        await send({**START_200, "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"bye"})

    served = await start_connection(nursery, app, keep_alive_timeout=5.0)
    await served.client.send_all(raw_request())
    responded_at = None
    received = b""
    while b"bye" not in received:
        received += await served.client.receive_some()
        responded_at = trio.current_time()
    await served.done.wait()  # the client never sends its EOF: the drain runs out
    assert responded_at == pytest.approx(4.5)
    assert trio.current_time() - responded_at == pytest.approx(LINGER_TIMEOUT)
