"""Tier 2: the HTTP/1.1 driver over memory streams, when the client and the app behave.

Keep-alive and pipelining, the scope the app sees, request bodies and backpressure, and
``Expect: 100-continue``. The rest of the driver's tests:

- tests/driver/test_http11_responses.py: response framing and headers;
- tests/driver/test_http11_errors.py: app exceptions and misuse of ``send()``;
- tests/driver/test_http11_disconnects.py: client disconnects, timeouts, ``begin_shutdown()``;
- tests/driver/test_http11_malformed.py: malformed requests and a fuzz test.

Their shared tools are in tests/http11_tools.py.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest
import trio
import trio.testing

from ..helpers import H11Client, hello_app, open_connection, read_until_eof
from ..http11_tools import (
    deadlock_guard,
    parse_responses,
    raw_request,
    read_body,
    respond,
    start_connection,
)

# -- keep-alive and pipelining -----------------------------------------------------------


async def path_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer with the request path."""
    await respond(send, scope["path"].encode())


async def test_keep_alive_serves_several_requests_on_one_connection(
    nursery: trio.Nursery,
) -> None:
    stream, _ = await open_connection(nursery, path_app)
    client = H11Client(stream)
    for index in range(3):
        response = await client.request(target=f"/{index}")
        assert response.status == 200
        assert response.body == f"/{index}".encode()
        assert response.header(b"connection") is None


async def test_pipelined_requests_are_answered_in_order_one_at_a_time(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    running = 0
    most_running = 0

    async def slow_first_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await trio.sleep(3 - int(scope["path"][1:]))  # the first request is the slowest
        running -= 1
        await path_app(scope, receive, send)

    stream, _ = await open_connection(nursery, slow_first_app)
    await stream.send_all(b"".join(raw_request(target=f"/{index}".encode()) for index in range(3)))
    reader = H11Client(stream)
    bodies = []
    for _ in range(3):
        reader.request_bytes()  # only moves the reader's h11 to "waiting for a response"
        bodies.append((await reader.read_response()).body)
    assert bodies == [b"/0", b"/1", b"/2"]
    assert most_running == 1


async def test_pipelined_requests_with_bodies_keep_their_boundaries(
    nursery: trio.Nursery,
) -> None:
    async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages = await read_body(receive)
        await respond(send, scope["path"].encode() + b":" + b"".join(m["body"] for m in messages))

    stream, _ = await open_connection(nursery, echo_app)
    await stream.send_all(
        raw_request(b"POST", b"/a", [(b"Host", b"t"), (b"Content-Length", b"5")], b"hello")
        + raw_request(b"GET", b"/b")
        + raw_request(
            b"POST",
            b"/c",
            [(b"Host", b"t"), (b"Transfer-Encoding", b"chunked")],
            b"3\r\nabc\r\n0\r\n\r\n",
        )
    )
    reader = H11Client(stream)
    bodies = []
    for _ in range(3):
        reader.request_bytes()
        bodies.append((await reader.read_response()).body)
    assert bodies == [b"/a:hello", b"/b:", b"/c:abc"]


async def test_client_connection_close_gets_connection_close_and_eof(
    nursery: trio.Nursery,
) -> None:
    served = await start_connection(nursery, hello_app)
    client = H11Client(served.client)
    response = await client.request(headers=[("Connection", "close")])
    assert response.status == 200
    assert response.body == b"Hello, world!"
    assert response.header(b"connection") == b"close"
    assert await read_until_eof(served.client) == b""
    await served.client.aclose()
    await served.done.wait()


async def test_http_1_0_request_is_answered_then_closed(nursery: trio.Nursery) -> None:
    served = await start_connection(nursery, hello_app)
    await served.client.send_all(b"GET / HTTP/1.0\r\n\r\n")
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 200
    assert response.body == b"Hello, world!"
    assert response.header(b"connection") == b"close"
    await served.client.aclose()
    await served.done.wait()


async def test_http_1_0_response_without_length_is_delimited_by_close(
    nursery: trio.Nursery,
) -> None:
    async def streaming_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    served = await start_connection(nursery, streaming_app)
    await served.client.send_all(b"GET / HTTP/1.0\r\n\r\n")
    raw = await read_until_eof(served.client)
    [response] = parse_responses(raw)
    assert response.body == b"one,two"
    assert response.header(b"transfer-encoding") is None  # HTTP/1.0 has no chunked coding
    assert raw.endswith(b"\r\n\r\none,two")


# -- the scope the app sees --------------------------------------------------------------


async def scope_of(nursery: trio.Nursery, request: bytes, **kwargs: Any) -> dict[str, Any]:
    """The scope the app is called with for ``request`` (raw bytes)."""
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await respond(send)

    served = await start_connection(nursery, app, **kwargs)
    await served.client.send_all(request)
    reader = H11Client(served.client)
    reader.request_bytes()
    assert (await reader.read_response()).status == 200
    [scope] = scopes
    return scope


async def test_scope_has_every_http_key(nursery: trio.Nursery) -> None:
    scope = await scope_of(
        nursery,
        raw_request(
            b"GET",
            b"/caf%C3%A9/x?q=1&r=%20",
            [(b"Host", b"example.com"), (b"X-Dup", b"1"), (b"Accept", b"*/*"), (b"x-dup", b"2")],
        ),
    )
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/café/x",
        "raw_path": b"/caf%C3%A9/x",
        "query_string": b"q=1&r=%20",
        "root_path": "",
        # names lower-cased by h11; order and duplicates as sent
        "headers": [
            (b"host", b"example.com"),
            (b"x-dup", b"1"),
            (b"accept", b"*/*"),
            (b"x-dup", b"2"),
        ],
        "client": None,  # memory streams have no addresses
        "server": None,
        "state": {},
        "extensions": {
            "http.response.pathsend": {},
            "http.response.zerocopysend": {},
            "http.response.trailers": {},
            "http.response.early_hint": {},
        },
    }


async def test_scope_root_path_comes_from_config_and_is_not_prefixed(
    nursery: trio.Nursery,
) -> None:
    scope = await scope_of(nursery, raw_request(target=b"/users/1"), root_path="/api")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/users/1"
    assert scope["raw_path"] == b"/users/1"


async def test_scope_of_http_1_0_request(nursery: trio.Nursery) -> None:
    scope = await scope_of(nursery, b"POST /form HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    assert scope["http_version"] == "1.0"
    assert scope["method"] == "POST"
    assert scope["headers"] == [(b"content-length", b"0")]


async def test_scope_of_absolute_form_target(nursery: trio.Nursery) -> None:
    scope = await scope_of(nursery, raw_request(target=b"http://example.com/a%2Fb?x=%41"))
    assert scope["path"] == "/a/b"
    assert scope["raw_path"] == b"/a%2Fb"
    assert scope["query_string"] == b"x=%41"


async def test_scope_state_is_a_shallow_copy_per_request(nursery: trio.Nursery) -> None:
    pool = object()
    states: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        states.append(scope["state"])
        scope["state"]["request_only"] = len(states)
        await respond(send)

    state = {"pool": pool}
    served = await start_connection(nursery, app, state=state)
    client = H11Client(served.client)
    await client.request()
    await client.request()
    first, second = states
    assert first is not state
    assert second is not state
    assert first["pool"] is pool
    assert second["pool"] is pool
    assert first == {"pool": pool, "request_only": 1}
    assert second == {"pool": pool, "request_only": 2}
    assert state == {"pool": pool}


# -- request bodies ----------------------------------------------------------------------


class BodyRecorder:
    """An app that records every receive() message of its one request, then answers."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.messages = await read_body(receive)
        await respond(send, b"".join(message["body"] for message in self.messages))

    def check_more_body_semantics(self) -> bytes:
        """Assert the ASGI rules for a complete body and return it."""
        assert all(message["type"] == "http.request" for message in self.messages)
        assert [m["more_body"] for m in self.messages[:-1]] == [True] * (len(self.messages) - 1)
        assert self.messages[-1]["more_body"] is False
        assert all(type(message["body"]) is bytes for message in self.messages)
        return b"".join(message["body"] for message in self.messages)


async def test_content_length_body_arrives_in_parts_with_more_body(
    nursery: trio.Nursery,
) -> None:
    app = BodyRecorder()
    stream, _ = await open_connection(nursery, app)
    await stream.send_all(raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Content-Length", b"11")]))
    for part in (b"hello", b" ", b"world"):
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(part)
    reader = H11Client(stream)
    reader.request_bytes()
    assert (await reader.read_response()).body == b"hello world"
    assert app.check_more_body_semantics() == b"hello world"
    assert len(app.messages) >= 2
    assert app.messages[0] == {"type": "http.request", "body": b"hello", "more_body": True}


async def test_chunked_body_arrives_in_parts_with_more_body(nursery: trio.Nursery) -> None:
    app = BodyRecorder()
    stream, _ = await open_connection(nursery, app)
    await stream.send_all(
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Transfer-Encoding", b"chunked")])
    )
    for part in (b"5\r\nhello\r\n", b"1\r\n \r\n", b"5\r\nworld\r\n", b"0\r\n\r\n"):
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(part)
    reader = H11Client(stream)
    reader.request_bytes()
    assert (await reader.read_response()).body == b"hello world"
    assert app.check_more_body_semantics() == b"hello world"
    assert len(app.messages) >= 2


async def test_body_sent_at_once_is_complete(nursery: trio.Nursery) -> None:
    app = BodyRecorder()
    stream, _ = await open_connection(nursery, app)
    response = await H11Client(stream).request("POST", body=b"x" * 1000)
    assert response.body == b"x" * 1000
    assert app.check_more_body_semantics() == b"x" * 1000


async def test_large_body_over_a_small_buffer_arrives_whole(nursery: trio.Nursery) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB
    app = BodyRecorder()
    stream, _ = await open_connection(nursery, app, body_buffer_size=1024)
    response = await H11Client(stream).request("POST", body=body)
    assert response.body == body
    assert app.check_more_body_semantics() == body


@pytest.mark.parametrize(
    "request_bytes",
    [
        raw_request(b"GET"),
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Content-Length", b"0")]),
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Transfer-Encoding", b"chunked")])
        + b"0\r\n\r\n",
    ],
    ids=["no-body", "content-length-0", "chunked-empty"],
)
async def test_empty_body_is_one_final_message(nursery: trio.Nursery, request_bytes: bytes) -> None:
    app = BodyRecorder()
    stream, _ = await open_connection(nursery, app)
    await stream.send_all(request_bytes)
    reader = H11Client(stream)
    reader.request_bytes()
    assert (await reader.read_response()).status == 200
    assert app.messages == [{"type": "http.request", "body": b"", "more_body": False}]


async def test_small_unread_body_is_discarded_and_the_connection_kept(
    nursery: trio.Nursery,
) -> None:
    stream, _ = await open_connection(nursery, path_app)  # never calls receive()
    client = H11Client(stream)
    first = await client.request("POST", "/1", body=b"ignored")
    assert first.body == b"/1"
    assert first.header(b"connection") is None
    assert (await client.request(target="/2")).body == b"/2"


async def test_large_unread_body_ends_the_connection_after_the_response(
    nursery: trio.Nursery,
) -> None:
    served = await start_connection(nursery, path_app, body_buffer_size=1024)
    await served.client.send_all(
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Content-Length", b"1000000")], b"x" * 4096)
        + raw_request()  # cannot be told apart from body bytes: never served
    )
    raw = await read_until_eof(served.client)
    await served.client.aclose()
    await served.done.wait()
    [response] = parse_responses(raw, ["POST"])
    assert response.body == b"/"


# -- backpressure ------------------------------------------------------------------------


async def test_server_stops_reading_a_body_the_app_does_not_read(
    nursery: trio.Nursery,
) -> None:
    body = b"x" * (256 * 1024)  # several reads' worth (the driver reads 64 KiB at a time)
    start_reading = trio.Event()
    uploaded = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await start_reading.wait()
        messages = await read_body(receive)
        await respond(send, str(sum(len(m["body"]) for m in messages)).encode())

    served = await start_connection(
        nursery, app, pair=trio.testing.lockstep_stream_pair, body_buffer_size=1024
    )
    client = H11Client(served.client)
    data = client.request_bytes("POST", body=body)

    async def upload() -> None:
        await served.client.send_all(data)  # lockstep: returns once the server read it all
        uploaded.set()

    nursery.start_soon(upload)
    await trio.testing.wait_all_tasks_blocked()
    assert not uploaded.is_set()  # every task is blocked, and the server is not reading

    start_reading.set()
    await uploaded.wait()
    response = await client.read_response()
    assert response.body == str(len(body)).encode()


async def test_server_stops_reading_pipelined_requests_behind_a_busy_one(
    nursery: trio.Nursery,
) -> None:
    count = 100
    padding = (b"X-Padding", b"p" * 1000)  # about 1 KiB a request, 100 KiB in all
    release = trio.Event()
    uploaded = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/0":
            await release.wait()
        await path_app(scope, receive, send)

    served = await start_connection(
        nursery, app, pair=trio.testing.lockstep_stream_pair, body_buffer_size=1024
    )
    data = b"".join(
        raw_request(target=f"/{index}".encode(), headers=[(b"Host", b"t"), padding])
        for index in range(count)
    )

    async def upload() -> None:
        await served.client.send_all(data)
        uploaded.set()

    nursery.start_soon(upload)
    await trio.testing.wait_all_tasks_blocked()
    assert not uploaded.is_set()

    release.set()
    reader = H11Client(served.client)
    for index in range(count):
        reader.request_bytes()
        assert (await reader.read_response()).body == f"/{index}".encode()
    assert uploaded.is_set()


# -- Expect: 100-continue ----------------------------------------------------------------


async def test_100_continue_is_sent_when_the_app_first_receives(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    go = trio.Event()
    app = BodyRecorder()

    async def waiting_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await go.wait()
        await app(scope, receive, send)

    stream, _ = await open_connection(nursery, waiting_app)
    client = H11Client(stream)
    head = h11.Request(
        method="POST",
        target="/",
        headers=[("Host", "t"), ("Expect", "100-continue"), ("Content-Length", "5")],
    )
    await stream.send_all(client.conn.send(head) or b"")
    with trio.move_on_after(10) as waited:
        await stream.receive_some()
    assert waited.cancelled_caught  # nothing, not even the 100, before the app receives

    go.set()
    client.conn.receive_data(await stream.receive_some())
    continue_event = client.conn.next_event()
    assert isinstance(continue_event, h11.InformationalResponse)
    assert continue_event.status_code == 100
    assert continue_event.reason == b"Continue"

    await stream.send_all(
        (client.conn.send(h11.Data(data=b"hello")) or b"")
        + (client.conn.send(h11.EndOfMessage()) or b"")
    )
    response = await client.read_response()
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header(b"connection") is None
    assert app.messages == [{"type": "http.request", "body": b"hello", "more_body": False}]
    assert (await client.request()).status == 200  # and the connection is kept alive


async def test_app_that_answers_without_reading_gets_no_100_and_closes(
    nursery: trio.Nursery,
) -> None:
    served = await start_connection(nursery, hello_app)
    await served.client.send_all(
        raw_request(
            b"POST",
            b"/",
            [(b"Host", b"t"), (b"Expect", b"100-continue"), (b"Content-Length", b"100000")],
        )
    )
    [response] = parse_responses(await read_until_eof(served.client), ["POST"])
    assert response.informational == []
    assert response.status == 200
    assert response.header(b"connection") == b"close"


async def test_no_100_continue_without_expect(nursery: trio.Nursery) -> None:
    stream, _ = await open_connection(nursery, BodyRecorder())
    response = await H11Client(stream).request("POST", body=b"abc")
    assert response.informational == []
    assert response.body == b"abc"
