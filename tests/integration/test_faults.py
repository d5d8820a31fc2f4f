"""Tier 3: faults a server on the internet meets: resets, half-closes, stalled readers.

Real sockets where the kernel's behaviour is the point (a reset is SO_LINGER 0 then close).
Arbitrary splits of valid requests are driver tests (tests/driver/test_faults.py).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
import trio
import trio.testing

from trio_asgi import ClientDisconnected

from ..helpers import H11Client, hello_app, parse_responses, read_until_eof, start_server
from ..http11_tools import error_records, raw_request, read_body

TIMEOUT = 5  # seconds: the bound on any single wait


async def reset(stream: trio.SocketStream) -> None:
    """Close with a TCP reset (RST) instead of a FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


async def still_serving(host: str, port: int) -> None:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        assert (await H11Client(stream).request()).body == b"Hello, world!"


class Probe:
    def __init__(self) -> None:
        self.waiting = trio.Event()  # the app is in receive() or streaming
        self.outcome: list[str] = []
        self.done = trio.Event()


def probe_app(probe: Probe) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            if scope["path"] == "/body":
                probe.waiting.set()
                messages = await read_body(receive)
                probe.outcome.append(messages[-1]["type"])
            elif scope["path"] == "/stream":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                try:
                    while True:
                        await send(
                            {"type": "http.response.body", "body": b"x" * 65536, "more_body": True}
                        )
                        probe.waiting.set()
                except ClientDisconnected:
                    probe.outcome.append("ClientDisconnected")
            else:
                await hello_app(scope, receive, send)
        finally:
            probe.done.set()

    return app


@pytest.mark.parametrize("point", ["before-sending", "mid-head", "mid-body", "mid-response"])
async def test_a_reset_at_any_point_ends_that_request_only(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, point: str
) -> None:
    probe = Probe()
    server = await start_server(nursery, probe_app(probe))
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        if point == "mid-head":
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: ")
        elif point == "mid-body":
            await stream.send_all(
                b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab"
            )
            await probe.waiting.wait()
        elif point == "mid-response":
            await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            await probe.waiting.wait()
        await reset(stream)
        if point == "mid-body":
            await probe.done.wait()
            assert probe.outcome == ["http.disconnect"]
        elif point == "mid-response":
            await probe.done.wait()
            assert probe.outcome == ["ClientDisconnected"]
        await still_serving(server.host, server.port)
        await server.shutdown()
    assert error_records(caplog) == []


async def test_half_closed_client_still_gets_its_response(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(raw_request())
            await stream.send_eof()  # done sending; still reading
            raw = await read_until_eof(stream)
    [response] = parse_responses(raw)
    assert (response.status, response.body) == (200, b"Hello, world!")
    await server.shutdown()


async def test_client_that_stops_reading_cannot_hold_shutdown_past_its_deadline(
    nursery: trio.Nursery,
) -> None:
    probe = Probe()
    server = await start_server(nursery, probe_app(probe), graceful_timeout=0.5)
    stream = await trio.open_tcp_stream(server.host, server.port)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with stream:
        await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")  # and never read
        with trio.fail_after(TIMEOUT):
            await probe.waiting.wait()
            started = trio.current_time()
            await server.shutdown()  # the app is stuck in send(): the deadline cancels it
        assert trio.current_time() - started < 0.5 + 2
        assert probe.done.is_set()


async def test_408_reaches_a_client_that_is_still_sending(nursery: trio.Nursery) -> None:
    # After request_header_timeout the server answers 408 with a lingering close: had it
    # closed on the client's unread bytes, the kernel would reset the connection and the
    # client could lose the 408.
    server = await start_server(nursery, hello_app, request_header_timeout=0.3)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
            for _ in range(8):  # keeps trickling header bytes past the deadline
                await trio.sleep(0.1)  # the scenario's pacing, not a wait for the server
                await stream.send_all(b"X-Slow: " + b"x" * 1000 + b"\r\n")
            raw = await read_until_eof(stream)
    assert raw.startswith(b"HTTP/1.1 408 ")
    await server.shutdown()


# -- a bug in one connection never ends the server -------------------------------------------


async def test_a_connection_that_cannot_start_is_logged_and_the_server_serves_on(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from trio_asgi import _serve

    real_connection = _serve.open_connection
    failures = [MemoryError("no room for one more")]

    def failing_once(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_connection(*args)

    monkeypatch.setattr(_serve, "open_connection", failing_once)
    server = await start_server(nursery, hello_app)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as refused:
            assert await read_until_eof(refused) == b""
        await still_serving(server.host, server.port)
    logged = [r for r in caplog.records if r.getMessage() == "Unexpected error on a new connection"]
    assert len(logged) == 1
    caplog.clear()
