"""Tier 3: HTTP/1.1 end to end, a real server on loopback and real clients.

httpx where a well-behaved client is enough; raw sockets where the exact bytes matter
(pipelining, chunked framing, ``Expect: 100-continue``, HEAD, HTTP/1.0, clients that vanish).
Raw responses are read until the server closes, then parsed with a client-side h11
connection, so no test hand-parses HTTP.

Nothing here sleeps to wait: apps and tests meet on :class:`trio.Event`, every wait is bounded
by :func:`trio.fail_after`, and "nothing has arrived yet" is checked with a non-blocking peek
after :func:`trio.testing.wait_all_tasks_blocked`.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trio_asgi import ClientDisconnected

from ..helpers import (
    H11Client,
    RunningServer,
    error_records,
    hello_app,
    parse_responses,
    read_until_eof,
    start_server,
)

TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


# -- client-side tools ---------------------------------------------------------------------


async def open_raw(server: RunningServer) -> tuple[trio.SocketStream, socket.socket]:
    """Connect to ``server``; returns the trio stream and the stdlib socket under it.

    The stdlib socket is kept only to :func:`peek` at it without blocking.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    trio_sock = trio.socket.from_stdlib_socket(sock)
    await trio_sock.connect((server.host, server.port))
    return trio.SocketStream(trio_sock), sock


def peek(sock: socket.socket) -> bytes | None:
    """What the server has sent and we have not read; ``None``: nothing, ``b""``: EOF."""
    try:
        return sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None


async def exchange(server: RunningServer, request: bytes) -> bytes:
    """Send raw request bytes on a new connection; return every byte until the server closes."""
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(request)
            return await read_until_eof(stream)


async def read_head(stream: trio.abc.ReceiveStream) -> bytes:
    """Read one response head (up to and including the blank line) and nothing after it.

    Only for a head the server sends alone, such as ``100 Continue``.
    """
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError(f"the server closed the connection after {data!r}")
        data += chunk
    return data


# -- app-side tools ------------------------------------------------------------------------


async def read_body(receive: Any) -> bytes:
    """Every body byte of the request, as an app reads it."""
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def send_text(send: Any, body: bytes, status: int = 200) -> None:
    """A complete response with a Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def path_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the request path."""
    if scope["type"] != "http":
        return
    await send_text(send, scope["path"].encode())


async def streaming_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``abcd`` in two chunks, with no Content-Length: the server chooses the framing."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ab", "more_body": True})
    await send({"type": "http.response.body", "body": b"cd", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


# -- keep-alive and pipelining -------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    nursery: trio.Nursery,
) -> None:
    async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            body = await read_body(receive)
            await send_text(send, f"{scope['method']} {scope['path']} ".encode() + body)

    server = await start_server(nursery, echo_app)
    raw = await exchange(
        server,
        b"POST /first HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /second HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nde\r\n0\r\n\r\n"
        b"GET /third HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    first, second, third = parse_responses(raw, ["POST", "POST", "GET"])
    assert [first.body, second.body, third.body] == [
        b"POST /first abc",
        b"POST /second de",
        b"GET /third ",
    ]
    assert [first.status, second.status, third.status] == [200, 200, 200]
    assert first.header(b"connection") is None
    assert second.header(b"connection") is None
    assert third.header(b"connection") == b"close"


async def test_httpx_reuses_one_keep_alive_connection(nursery: trio.Nursery) -> None:
    async def client_port_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send_text(send, str(scope["client"][1]).encode())

    server = await start_server(nursery, client_port_app)
    async with httpx.AsyncClient(base_url=server.url) as http:
        responses = [await http.get(f"/{n}") for n in range(4)]
    assert all(response.status_code == 200 for response in responses)
    ports = {response.text for response in responses}
    assert len(ports) == 1, f"expected one connection, saw client ports {ports}"
    assert all(response.headers.get("connection") != "close" for response in responses)


# -- message framing -----------------------------------------------------------------------


async def test_chunked_request_body_is_dechunked_for_the_app(nursery: trio.Nursery) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            messages.append(message)
            if not message.get("more_body", False):
                break
        await send_text(send, b"".join(m["body"] for m in messages))

    server = await start_server(nursery, app)
    raw = await exchange(
        server,
        b"POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    )
    (response,) = parse_responses(raw, ["POST"])
    assert response.status == 200
    assert response.body == b"hello world"
    assert all(m["type"] == "http.request" for m in messages)
    assert [m["more_body"] for m in messages][-1] is False
    assert all(m["more_body"] is True for m in messages[:-1])


async def test_response_without_content_length_is_chunked(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, streaming_app)
    raw = await exchange(server, b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    assert body == b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"


# -- Expect: 100-continue ------------------------------------------------------------------


async def test_100_continue_is_sent_only_when_the_app_asks_for_the_body(
    nursery: trio.Nursery,
) -> None:
    entered = trio.Event()
    proceed = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await proceed.wait()
        await send_text(send, b"got " + await read_body(receive))

    server = await start_server(nursery, app)
    stream, sock = await open_raw(server)
    with trio.fail_after(TIMEOUT):
        async with stream:
            await stream.send_all(
                b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            await entered.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert peek(sock) is None, "100 Continue before the app called receive()"
            proceed.set()
            interim = await read_head(stream)
            assert interim.startswith(b"HTTP/1.1 100 ")
            assert peek(sock) is None, "more than the 100 Continue before the body was sent"
            await stream.send_all(b"hello")
            raw = await read_until_eof(stream)
    (response,) = parse_responses(interim + raw, ["POST"])
    assert response.informational == [100]
    assert response.status == 200
    assert response.body == b"got hello"


async def test_early_rejection_sends_no_100_continue_and_closes(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send_text(send, b"too large", status=413)

    server = await start_server(nursery, app)
    raw = await exchange(
        server,
        b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 413 ")
    (response,) = parse_responses(raw, ["POST"])
    assert response.informational == []
    assert response.status == 413
    assert response.header(b"connection") == b"close"
    assert response.body == b"too large"


# -- HEAD, HTTP/1.0, Connection: close ---------------------------------------------------


async def test_head_response_has_headers_and_no_body_bytes(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    raw = await exchange(server, b"HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")
    assert raw.count(b"\r\n\r\n") == 1
    (response,) = parse_responses(raw, ["HEAD"])
    assert response.header(b"content-length") == b"13"
    assert response.body == b""


async def test_head_response_of_a_streaming_app_has_no_body_bytes(
    nursery: trio.Nursery,
) -> None:
    server = await start_server(nursery, streaming_app)
    raw = await exchange(server, b"HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")
    assert raw.count(b"\r\n\r\n") == 1  # neither the chunks nor the 0-chunk
    (response,) = parse_responses(raw, ["HEAD"])
    assert response.body == b""


async def test_http10_request_gets_a_response_then_close(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    raw = await exchange(server, b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
    (response,) = parse_responses(raw, ["GET"])
    assert response.status == 200
    assert response.body == b"Hello, world!"
    assert response.header(b"connection") == b"close"


async def test_http10_response_without_content_length_is_close_delimited(
    nursery: trio.Nursery,
) -> None:
    server = await start_server(nursery, streaming_app)
    raw = await exchange(server, b"GET / HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"abcd"


async def test_connection_close_from_the_client_is_honoured(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app)
    raw = await exchange(
        server,
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        b"GET /ignored HTTP/1.1\r\nHost: test\r\n\r\n",
    )
    (response,) = parse_responses(raw, ["GET"])  # exactly one response, then EOF
    assert response.status == 200
    assert response.header(b"connection") == b"close"


# -- the scope -----------------------------------------------------------------------------


async def test_scope_over_a_real_socket(nursery: trio.Nursery) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scopes.append(scope)
            await send_text(send, b"ok")

    server = await start_server(nursery, app, root_path="/api")
    stream, _ = await open_raw(server)
    client_host, client_port = stream.socket.getsockname()[:2]
    with trio.fail_after(TIMEOUT):
        async with stream:
            await stream.send_all(
                b"GET /items/caf%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: test\r\n"
                b"X-Custom: A\r\nConnection: close\r\n\r\n"
            )
            raw = await read_until_eof(stream)
    assert parse_responses(raw, ["GET"])[0].status == 200
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["client"] == (client_host, client_port) == ("127.0.0.1", client_port)
    assert scope["server"] == ("127.0.0.1", server.port)
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/items/café"
    assert scope["raw_path"] == b"/items/caf%C3%A9"
    assert scope["query_string"] == b"x=1&y=%20"
    assert (b"x-custom", b"A") in scope["headers"]
    assert (b"host", b"test") in scope["headers"]


# -- clients that go away ------------------------------------------------------------------


async def test_disconnect_mid_body_gives_partial_body_then_disconnect(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[dict[str, Any]] = []
    got_partial = trio.Event()
    app_done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] == "http.disconnect":
                    return
                got_partial.set()
        finally:
            app_done.set()

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(
                b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello"
            )
            await got_partial.wait()
        await app_done.wait()
        await server.shutdown()
    *requests, last = messages
    assert last == {"type": "http.disconnect"}
    assert requests, "the app saw no body before the disconnect"
    assert all(m["type"] == "http.request" and m["more_body"] is True for m in requests)
    assert b"".join(m["body"] for m in requests) == b"hello"
    assert error_records(caplog) == []


async def test_disconnect_mid_response_makes_send_raise_client_disconnected(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[OSError] = []
    app_saw_it = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 4096, "more_body": True})
        except OSError as exc:
            errors.append(exc)
            app_saw_it.set()
            raise  # the server must treat this as a normal end, not an error

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            first = await stream.receive_some(65536)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        await app_saw_it.wait()
        await server.shutdown()
    (error,) = errors
    assert isinstance(error, ClientDisconnected)
    assert error_records(caplog) == []


async def test_app_ignoring_disconnect_is_cancelled_after_disconnect_timeout(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    disconnect_timeout = 0.2
    started = trio.Event()
    cancelled = trio.Event()
    cancelled_at: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        try:
            await trio.sleep_forever()  # never looks at receive() again
        finally:
            cancelled_at.append(trio.current_time())
            cancelled.set()

    server = await start_server(nursery, app, disconnect_timeout=disconnect_timeout)
    with trio.fail_after(TIMEOUT):
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            await started.wait()
            assert not cancelled.is_set()
            left_at = trio.current_time()
        await cancelled.wait()
    assert cancelled_at[0] - left_at >= disconnect_timeout
    assert not server.stopped  # the server itself goes on
    assert error_records(caplog) == []


# -- load and failure ----------------------------------------------------------------------


async def test_twenty_concurrent_clients_are_served_at_once(nursery: trio.Nursery) -> None:
    clients = 20
    arrived = 0
    all_arrived = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal arrived
        if scope["type"] != "http":
            return
        arrived += 1
        if arrived == clients:
            all_arrived.set()
        await all_arrived.wait()  # nobody is answered until every request is in flight
        await send_text(send, scope["path"].encode())

    server = await start_server(nursery, app)
    results: dict[int, httpx.Response] = {}

    async def fetch(http: httpx.AsyncClient, n: int) -> None:
        results[n] = await http.get(f"/{n}")

    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http, trio.open_nursery() as fetches:
            for n in range(clients):
                fetches.start_soon(fetch, http, n)
    assert sorted(results) == list(range(clients))
    assert all(results[n].status_code == 200 for n in range(clients))
    assert all(results[n].text == f"/{n}" for n in range(clients))


async def test_exception_in_app_gives_500_and_the_server_keeps_serving(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/boom":
            raise ValueError("boom")
        await send_text(send, b"fine")

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            failed = await http.get("/boom")
            after = await http.get("/ok")
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("text/plain")
    assert failed.headers["connection"] == "close"
    assert after.status_code == 200
    assert after.text == "fine"
    (record,) = error_records(caplog)
    assert "Exception in ASGI application" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_app_cancelled_inside_its_final_send_still_closes_the_connection(
    nursery: trio.Nursery,
) -> None:
    # A disconnect watcher that cancels its nursery as soon as receive() says the response
    # is complete: the cancellation lands inside the app's last send(). The server must
    # still finish the connection (here: close it, as HTTP/1.0 requires).
    async def watch(receive: Any, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch, receive, watcher.cancel_scope)
            for i in range(3):
                await send({"type": "http.response.body", "body": b"x\n", "more_body": i < 2})
            watcher.cancel_scope.cancel()

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        raw = await exchange(server, b"GET / HTTP/1.0\r\n\r\n")  # returns at EOF
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"x\nx\nx\n")
    with trio.fail_after(TIMEOUT):
        await server.shutdown()  # no connection left waiting for the graceful timeout


@pytest.mark.parametrize("access_log", [True, False])
async def test_access_log_setting_switches_the_access_log(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, access_log: bool
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.access")
    server = await start_server(nursery, hello_app, access_log=access_log)
    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url + "/q?x=1")).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    if access_log:
        [line] = lines
        assert '"GET /q?x=1 HTTP/1.1" 200 ' in line
        assert line.startswith("127.0.0.1:")
    else:
        assert lines == []


async def test_the_task_tree_is_named(nursery: trio.Nursery) -> None:
    """The app runs in "trio-asgi app", beside "trio-asgi reader", in the nursery of
    "trio-asgi connection" (docs/architecture.md), as Trio's debugging tools show them;
    two connections on one address share the scope's ``server`` tuple."""
    seen: list[tuple[str, set[str], str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = trio.lowlevel.current_task()
        siblings = {child.name for child in task.parent_nursery.child_tasks}
        seen.append((task.name, siblings, task.parent_nursery.parent_task.name, scope["server"]))
        await hello_app(scope, receive, send)

    server = await start_server(nursery, app)
    for _ in range(2):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            assert (await H11Client(stream).request()).status == 200
    assert [entry[:3] for entry in seen] == [
        ("trio-asgi app", {"trio-asgi app", "trio-asgi reader"}, "trio-asgi connection")
    ] * 2
    assert seen[0][3] == (server.host, server.port)
    assert seen[0][3] is seen[1][3]
