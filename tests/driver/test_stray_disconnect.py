"""Tier 2: an app that sends ``{"type": "http.disconnect"}`` through ``send()``.

Tutorial apps do it after their response. Then it is ignored with one WARNING per request:
the response already sent is delivered intact and the keep-alive connection serves the next
request. Before the response is complete it stays an error (a ``receive`` event sent
through ``send()``: ASGI spec, "Error Handling").
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from trio_asgi import UnexpectedMessage

from ..helpers import H11Client
from ..http11_tools import error_records, finish, respond, start_connection

STRAY: dict[str, Any] = {"type": "http.disconnect"}


def stray_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "trio_asgi.error"
        and record.levelno == logging.WARNING
        and "'http.disconnect'" in record.getMessage()
    ]


async def test_stray_disconnect_after_the_response_is_ignored_with_one_warning(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await respond(send, f"answer to {scope['path']}".encode())
        await send(STRAY)
        await send(STRAY)  # twice: still one warning for this request

    served = await start_connection(nursery, app)
    client = H11Client(served.client)
    first = await client.request("GET", "/one")
    second = await client.request("GET", "/two")  # the same connection, kept alive
    assert (first.status, first.body) == (200, b"answer to /one")
    assert (second.status, second.body) == (200, b"answer to /two")
    await finish(served)
    assert [record.getMessage() for record in stray_warnings(caplog)] == [
        f"ASGI app sent 'http.disconnect' after its response to \"GET {path}\"; ignored "
        "(it is a receive event: the server sends it, the app never needs to)"
        for path in ("/one", "/two")
    ]
    assert error_records(caplog) == []


@pytest.mark.parametrize("started", [False, True])
async def test_disconnect_sent_before_the_response_is_complete_is_an_error(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, started: bool
) -> None:
    raised: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if started:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send(STRAY)
        except UnexpectedMessage as exc:
            raised.append(exc)
            raise

    served = await start_connection(nursery, app)
    response = await H11Client(served.client).request()
    assert response.status == 500  # nothing of the response was written yet
    await finish(served)
    [exc] = raised
    expected = "'http.response.body'" if started else "'http.response.start'"
    assert str(exc) == f"Expected ASGI message {expected}, but got 'http.disconnect'."
    assert len(error_records(caplog)) == 1
    assert stray_warnings(caplog) == []
