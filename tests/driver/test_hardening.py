"""Tier 2: issue 4's limits and timeouts that live in the server core, one behaviour per test.

The connection driver over memory streams: request bodies and connections. The lifespan
and contextvars halves run the real server (tests/integration/test_hardening.py).

Timeouts run under ``autojump_clock`` (MockClock(autojump_threshold=0)), so each takes no
real time and the asserted durations are exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from ..helpers import H11Client, hello_app, parse_responses, read_until_eof
from ..http11_tools import (
    deadlock_guard,
    error_records,
    raw_request,
    read_body,
    respond,
    start_connection,
)

# -- request bodies ----------------------------------------------------------------------


async def test_body_read_timeout_gives_408(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlock_guard(nursery)
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend(await read_body(receive))

    served = await start_connection(nursery, app, body_read_timeout=4)
    await served.client.send_all(
        raw_request(b"POST", headers=[(b"Host", b"t"), (b"Content-Length", b"10")], body=b"abc")
    )
    started = trio.current_time()
    raw = await read_until_eof(served.client)
    assert trio.current_time() - started == pytest.approx(4)
    assert seen == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert error_records(caplog) == []


async def test_content_length_over_the_body_limit_is_refused_without_the_app(
    nursery: trio.Nursery,
) -> None:
    called: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append(scope["path"])

    served = await start_connection(nursery, app, max_request_body_size=100)
    await served.client.send_all(
        raw_request(b"POST", headers=[(b"Host", b"t"), (b"Content-Length", b"101")])
    )
    raw = await read_until_eof(served.client)
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert called == []


async def test_streamed_body_over_the_limit_gets_413_and_is_not_buffered(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend(await read_body(receive))

    served = await start_connection(nursery, app, max_request_body_size=1000)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"258\r\n" + b"x" * 600 + b"\r\n"  # 600 bytes a chunk
    await served.client.send_all(head + chunk + chunk + chunk + b"0\r\n\r\n")
    raw = await read_until_eof(served.client)
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert seen[-1] == {"type": "http.disconnect"}
    assert sum(len(m.get("body", b"")) for m in seen) <= 1000  # never more than the limit
    assert error_records(caplog) == []


async def test_body_within_the_limit_is_served(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b"".join(m.get("body", b"") for m in await read_body(receive))
        await respond(send, str(len(body)).encode())

    served = await start_connection(nursery, app, max_request_body_size=1000)
    response = await H11Client(served.client).request("POST", body=b"y" * 1000)
    assert (response.status, response.body) == (200, b"1000")


# -- connections -------------------------------------------------------------------------


async def test_max_requests_per_connection_closes_after_the_last(nursery: trio.Nursery) -> None:
    served = await start_connection(nursery, hello_app, max_requests_per_connection=2)
    await served.client.send_all(raw_request() + raw_request() + raw_request())
    raw = await read_until_eof(served.client)
    first, second = parse_responses(raw, ["GET", "GET"])  # the third is never answered
    assert first.header(b"connection") is None
    assert second.header(b"connection") == b"close"


async def test_tls_handshake_on_the_plain_port_is_closed_without_a_response(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    served = await start_connection(nursery, hello_app)
    client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64
    await served.client.send_all(client_hello)
    assert await read_until_eof(served.client) == b""
    await served.done.wait()
    assert error_records(caplog) == []
