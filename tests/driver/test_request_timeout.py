"""Tier 2: ``Config.request_timeout`` on the HTTP/1.1 driver, under ``autojump_clock``.

An app call that has not completed its response within ``request_timeout`` is cancelled
through its request's cancel scope (``RequestCycle.cancel_scope``): the client gets 504 if
no byte of the response went out, and the connection is aborted if some did. Logged once
per request. WebSocket sessions and the work an app does after its response are not limited.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import TextMessage

from ..helpers import H11Client, read_until_eof
from ..http11_tools import (
    START_200,
    WaitsUntilCancelled,
    deadlock_guard,
    error_records,
    finish,
    parse_responses,
    raw_request,
    respond,
    start_connection,
)
from ..websocket_tools import WSClient

TIMEOUT = 5.0  # seconds: request_timeout in these tests


def timeout_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ``Request timed out`` lines ``trio_asgi.error`` logged."""
    return [
        record
        for record in caplog.records
        if record.name == "trio_asgi.error" and record.getMessage().startswith("Request timed out")
    ]


async def test_app_that_has_not_started_its_response_gets_504_once_logged(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlock_guard(nursery)
    app = WaitsUntilCancelled()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    started = trio.current_time()
    await served.client.send_all(raw_request(b"GET", b"/slow?x=1"))
    raw = await read_until_eof(served.client)
    [response] = parse_responses(raw)
    assert response.status == 504
    assert response.header(b"connection") == b"close"
    assert app.cancelled_at == [pytest.approx(started + TIMEOUT)]
    await finish(served)
    [record] = timeout_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "Request timed out after 5 s: GET /slow?x=1 from -"
    assert error_records(caplog) == []


async def test_response_start_held_without_body_still_gets_504(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)  # held until the first body message: nothing is written yet
        await trio.sleep_forever()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    await served.client.send_all(raw_request())
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 504
    await finish(served)
    assert len(timeout_records(caplog)) == 1


async def test_response_begun_is_aborted_and_no_keep_alive_request_follows(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlock_guard(nursery)
    targets: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        targets.append(scope["path"])
        await send(START_200)
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        await trio.sleep_forever()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    # Two keep-alive requests, pipelined: the second must never be answered.
    await served.client.send_all(raw_request(b"GET", b"/first") + raw_request(b"GET", b"/second"))
    started = trio.current_time()
    raw = await read_until_eof(served.client)
    assert trio.current_time() - started == pytest.approx(TIMEOUT)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.count(b"HTTP/1.1") == 1  # no second response, not even a 504
    assert raw.endswith(b"4\r\nhalf\r\n")  # the chunked body is cut short, never ended
    await finish(served)
    assert targets == ["/first"]
    [record] = timeout_records(caplog)
    assert "GET /first" in record.getMessage()


async def test_request_completed_in_time_is_untouched_and_keep_alive_goes_on(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await trio.sleep(TIMEOUT - 0.5)
        await respond(send, b"in time")

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    client = H11Client(served.client)
    for _ in range(3):  # each request has its own deadline: 3 x 4.5 s is fine
        response = await client.request()
        assert (response.status, response.body) == (200, b"in time")
    await finish(served)
    assert timeout_records(caplog) == []
    assert error_records(caplog) == []


async def test_deadline_is_set_when_the_request_starts(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines: list[float] = []
    started: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        deadlines.append(trio.current_effective_deadline())
        await respond(send)

    served = await start_connection(nursery, app, request_timeout=TIMEOUT, keep_alive_timeout=1000)
    client = H11Client(served.client)
    await trio.sleep(100)  # idle time before the request does not count
    started.append(trio.current_time())
    assert (await client.request()).status == 200
    assert deadlines == [pytest.approx(started[0] + TIMEOUT)]
    await finish(served)


async def test_inf_sets_no_deadline(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery, 10_000)
    deadlines: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        deadlines.append(trio.current_effective_deadline())
        await trio.sleep(3600)
        await respond(send)

    served = await start_connection(nursery, app, request_timeout=math.inf)
    assert (await H11Client(served.client).request()).status == 200
    assert deadlines == [math.inf]
    await finish(served)
    assert timeout_records(caplog) == []


async def test_work_after_a_complete_response_is_not_cut_by_the_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    finished = trio.Event()
    deadlines: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send)
        deadlines.append(trio.current_effective_deadline())
        await trio.sleep(TIMEOUT * 10)  # background work, well past request_timeout
        finished.set()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    assert (await H11Client(served.client).request()).status == 200
    await finished.wait()
    assert deadlines == [math.inf]
    await finish(served)
    assert timeout_records(caplog) == []


async def test_an_earlier_disconnect_grace_wins_over_the_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    app = WaitsUntilCancelled()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT, disconnect_timeout=1.0)
    await served.client.send_all(raw_request())
    await trio.sleep(2)
    left_at = trio.current_time()
    await served.client.aclose()
    await served.done.wait()
    assert app.cancelled_at == [pytest.approx(left_at + 1.0)]  # before the timeout (t = 5)
    assert timeout_records(caplog) == []
    assert error_records(caplog) == []


async def test_timeout_earlier_than_the_disconnect_grace_writes_no_504_to_a_gone_client(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    app = WaitsUntilCancelled()

    served = await start_connection(nursery, app, request_timeout=TIMEOUT, disconnect_timeout=60.0)
    started = trio.current_time()
    await served.client.send_all(raw_request())
    await trio.sleep(1)
    await served.client.aclose()
    await served.done.wait()
    assert app.cancelled_at == [pytest.approx(started + TIMEOUT)]
    assert len(timeout_records(caplog)) == 1
    assert not [r for r in caplog.records if r.name == "trio_asgi.access"]  # no 504 sent


async def test_a_disconnect_after_the_timeout_fired_gets_no_504(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    cancelled = trio.Event()
    client_gone = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()
            # A slow cleanup that outlasts the client (bounded, so a failing test ends).
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 100):
                await client_gone.wait()
                assert (await receive())["type"] == "http.request"
                assert await receive() == {"type": "http.disconnect"}

    served = await start_connection(nursery, app, request_timeout=TIMEOUT)
    await served.client.send_all(raw_request())
    await cancelled.wait()
    await served.client.aclose()
    await trio.testing.wait_all_tasks_blocked()
    client_gone.set()
    await served.done.wait()
    assert len(timeout_records(caplog)) == 1
    assert not [r for r in caplog.records if r.name == "trio_asgi.access"]  # no 504 sent
    assert error_records(caplog) == []


async def test_websocket_sessions_are_not_limited(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await trio.sleep(TIMEOUT * 10)
        await send({"type": "websocket.send", "text": "still here"})
        await send({"type": "websocket.close", "code": 1000})

    served = await start_connection(nursery, app, request_timeout=TIMEOUT, ws_ping_interval=0)
    client = WSClient(served.client)
    await client.connect()
    event = await client.next_event()
    assert isinstance(event, TextMessage)
    assert event.data == "still here"
    await client.expect_close()
    await finish(served)
    assert timeout_records(caplog) == []
    assert error_records(caplog) == []
