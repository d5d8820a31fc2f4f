"""Tier 2: the WebSocket session over memory streams, driven by a client-side wsproto.

Each test runs one :class:`~trio_asgi._h11.connection.HTTP11Connection` over
``trio.testing.memory_stream_pair()`` (``lockstep_stream_pair`` for backpressure) and talks
to it with ``WSClient`` (tests/websocket_tools.py), which builds the handshake and frames
with a real client-side ``wsproto.WSConnection``; frames a well-behaved client never sends
are built by ``frame``. Keepalive pings run under ``autojump_clock``. The spec is ASGI
WebSocket 2.5 (with the ``websocket.http.response`` extension) and RFC 6455; a hypothesis
test checks that any bytes after a valid handshake end in a close frame or an EOF, never an
exception.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from trio_asgi import ClientDisconnected, InvalidMessage

from ..helpers import H11Client, parse_responses, read_until_eof
from ..http11_tools import Served, deadlock_guard, error_records, finish, start_connection
from ..websocket_tools import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Recorder,
    WSClient,
    echo_app,
    frame,
)


async def open_ws(
    nursery: trio.Nursery, app: Any, *, target: str = "/", pair: Any = None, **config: Any
) -> tuple[Served, WSClient]:
    """A connection under test and a client that completed the handshake."""
    served = await start_connection(
        nursery, app, pair=pair or trio.testing.memory_stream_pair, **config
    )
    client = WSClient(served.client)
    accepted = await client.connect(target)
    assert isinstance(accepted, AcceptConnection), accepted
    return served, client


# -- the handshake and the scope ---------------------------------------------------------


async def test_scope_carries_the_websocket_keys(nursery: trio.Nursery) -> None:
    app = Recorder()
    served = await start_connection(nursery, app, root_path="/api", state={"db": "conn"})
    client = WSClient(served.client)
    accepted = await client.connect(
        "/api/chat/r%C3%A9?room=1&x=%20",
        subprotocols=["chat.v2", "chat.v1"],
        extra_headers=[(b"x-token", b"abc")],
    )
    assert isinstance(accepted, AcceptConnection)
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()
    scope = app.scope
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/api/chat/ré"
    assert scope["raw_path"] == b"/api/chat/r%C3%A9"
    assert scope["query_string"] == b"room=1&x=%20"
    assert scope["root_path"] == "/api"
    assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
    assert scope["state"] == {"db": "conn"}
    assert "websocket.http.response" in scope["extensions"]
    headers = scope["headers"]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
    assert (b"x-token", b"abc") in headers
    assert all(name == name.lower() for name, _ in headers)
    assert any(name == b"sec-websocket-key" for name, _ in headers)
    assert scope["client"] is None  # memory streams have no address
    assert scope["server"] is None


async def test_scope_state_is_a_copy_of_the_lifespan_state(nursery: trio.Nursery) -> None:
    state = {"counter": 1}
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope["state"]))
        scope["state"]["counter"] = 99
        scope["state"]["added"] = True
        await receive()
        await send({"type": "websocket.close"})

    for _ in range(2):
        served = await start_connection(nursery, app, state=state)
        reply = await WSClient(served.client).connect()
        assert isinstance(reply, RejectConnection)
        await finish(served)
    assert seen == [{"counter": 1}, {"counter": 1}]
    assert state == {"counter": 1}


async def test_connect_is_the_first_message_and_accept_completes_the_handshake(
    nursery: trio.Nursery,
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="hi"))
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await app.disconnected.wait()
    assert [m["type"] for m in app.messages] == [
        "websocket.connect",
        "websocket.receive",
        "websocket.disconnect",
    ]
    await served.done.wait()


async def test_accept_subprotocol_and_headers_reach_the_client_in_the_101(
    nursery: trio.Nursery,
) -> None:
    app = Recorder(
        {
            "type": "websocket.accept",
            "subprotocol": "chat.v1",
            "headers": [(b"x-session", b"s-42"), (b"set-cookie", b"a=b")],
        }
    )
    served = await start_connection(nursery, app)
    client = WSClient(served.client)
    accepted = await client.connect(subprotocols=["chat.v2", "chat.v1"])
    assert isinstance(accepted, AcceptConnection)
    assert accepted.subprotocol == "chat.v1"
    assert (b"x-session", b"s-42") in accepted.extra_headers
    assert (b"set-cookie", b"a=b") in accepted.extra_headers
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()


async def test_close_before_accept_is_an_http_403(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.close", "code": 4003})

    served = await start_connection(nursery, app)
    await served.client.send_all(WSClient(served.client).handshake_bytes())
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 403
    await finish(served)


async def test_app_returning_without_accept_gets_a_500(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    served = await start_connection(nursery, app)
    await served.client.send_all(WSClient(served.client).handshake_bytes())
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 500
    await finish(served)


async def test_app_exception_before_accept_gets_a_500_and_is_logged_once(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise LookupError("no such room")

    served = await start_connection(nursery, app)
    await served.client.send_all(WSClient(served.client).handshake_bytes())
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 500
    await finish(served)
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is LookupError


UPGRADE = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
KEY = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
VERSION = ("Sec-WebSocket-Version", "13")


@pytest.mark.parametrize(
    ("headers", "statuses", "reason"),
    [
        ([*UPGRADE, VERSION], {400}, b"Sec-WebSocket-Key"),
        ([*UPGRADE, KEY, ("Sec-WebSocket-Version", "8")], {426}, b"Sec-WebSocket-Version"),
        ([*UPGRADE, KEY], {400, 426}, b"Sec-WebSocket-Version"),
        ([("Upgrade", "websocket"), KEY, VERSION], {400}, b"Connection"),
        ([("Upgrade", "websocket"), ("Connection", "close"), KEY, VERSION], {400}, b"Connection"),
    ],
    ids=["no-key", "version-8", "no-version", "no-connection", "connection-close"],
)
async def test_malformed_handshake_gets_a_4xx_that_names_the_problem(
    nursery: trio.Nursery, headers: list[tuple[str, str]], statuses: set[int], reason: bytes
) -> None:
    called = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    served = await start_connection(nursery, app)
    response = await H11Client(served.client).request(headers=headers)
    assert response.status in statuses
    assert reason.lower() in response.body.lower()
    if response.status == 426:  # RFC 6455 section 4.4: say which version we speak
        assert response.header(b"sec-websocket-version") == b"13"
    assert not called
    await finish(served)


async def test_with_ws_none_an_upgrade_request_is_plain_http(nursery: trio.Nursery) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    served = await start_connection(nursery, app, ws="none")
    response = await H11Client(served.client).request(headers=[*UPGRADE, KEY, VERSION])
    assert response.status == 200
    assert response.body == b"plain"
    assert [s["type"] for s in scopes] == ["http"]
    assert (b"upgrade", b"websocket") in scopes[0]["headers"]
    await finish(served)


# -- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    ["héllo", b"\x00\xffbytes", "", b"", "x" * (1 << 20), os.urandom(1 << 20)],
    ids=["text", "bytes", "empty-text", "empty-bytes", "1MiB-text", "1MiB-bytes"],
)
async def test_messages_round_trip(nursery: trio.Nursery, payload: str | bytes) -> None:
    served, client = await open_ws(nursery, echo_app)
    event = TextMessage(data=payload) if isinstance(payload, str) else BytesMessage(data=payload)
    await client.send(event)
    assert await client.next_message() == payload
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()


async def test_received_messages_have_exactly_one_of_text_and_bytes(nursery: trio.Nursery) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="t"))
    await client.send(BytesMessage(data=b"b"))
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await app.disconnected.wait()
    text, data = app.messages[1:3]
    assert text["type"] == data["type"] == "websocket.receive"
    assert text["text"] == "t"
    assert text.get("bytes") is None
    assert data["bytes"] == b"b"
    assert data.get("text") is None
    await served.done.wait()


async def test_send_needs_exactly_one_of_text_and_bytes(nursery: trio.Nursery) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for bad in ({"text": "a", "bytes": b"b"}, {}, {"text": None, "bytes": None}):
            with pytest.raises(InvalidMessage) as info:
                await send({"type": "websocket.send", **bad})
            errors.append(str(info.value))
        await send({"type": "websocket.send", "text": None, "bytes": b"ok"})
        await send({"type": "websocket.send", "text": "ok", "bytes": None})
        await send({"type": "websocket.close", "code": 1000})

    served, client = await open_ws(nursery, app)
    assert await client.next_message() == b"ok"
    assert await client.next_message() == "ok"
    assert (await client.expect_close()).code == 1000
    assert len(errors) == 3
    await served.done.wait()


async def test_fragmented_messages_are_reassembled(nursery: trio.Nursery) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="hé", message_finished=False))
    await client.send(Ping(payload=b"between fragments"))
    assert await client.next_event() == Pong(payload=b"between fragments")
    await client.send(TextMessage(data="llo", message_finished=True))
    for part in (b"ab", b"", b"cd"):
        await client.send(BytesMessage(data=part, message_finished=False))
    await client.send(BytesMessage(data=b"ef", message_finished=True))
    # The same split at the byte level: a UTF-8 sequence cut between two frames.
    snowman = "☃".encode()
    split = frame(TEXT, snowman[:1], fin=False) + frame(CONTINUATION, snowman[1:])
    await client.stream.send_all(split)
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await app.disconnected.wait()
    assert app.messages[1:4] == [
        {"type": "websocket.receive", "text": "héllo"},
        {"type": "websocket.receive", "bytes": b"abcdef"},
        {"type": "websocket.receive", "text": "☃"},
    ]
    await served.done.wait()


async def test_ping_is_answered_with_a_pong(nursery: trio.Nursery) -> None:
    served, client = await open_ws(nursery, echo_app)
    await client.send(Ping(payload=b"are you there"))
    assert await client.next_event() == Pong(payload=b"are you there")
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()


# -- closing -----------------------------------------------------------------------------


async def test_app_close_code_and_reason_reach_the_client(nursery: trio.Nursery) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4321, "reason": "game over"})
        disconnects.append(await receive())

    served, client = await open_ws(nursery, app)
    close = await client.expect_close()
    assert (close.code, close.reason) == (4321, "game over")
    await served.done.wait()
    assert [d["type"] for d in disconnects] == ["websocket.disconnect"]


@pytest.mark.parametrize(
    ("close_frame", "code", "reason"),
    [
        (frame(CLOSE, (4000).to_bytes(2, "big") + "au revoir ☃".encode()), 4000, "au revoir ☃"),
        (frame(CLOSE, (1001).to_bytes(2, "big")), 1001, ""),
        (frame(CLOSE, b""), 1005, ""),
    ],
    ids=["code-and-reason", "code-only", "no-code"],
)
async def test_client_close_code_and_reason_reach_the_app(
    nursery: trio.Nursery, close_frame: bytes, code: int, reason: str
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.stream.send_all(close_frame)
    reply = await client.expect_close(reply=False)  # the server echoes the close
    await app.disconnected.wait()
    assert app.disconnect == {"type": "websocket.disconnect", "code": code, "reason": reason}
    assert reply.code in (code, 1000)
    await served.done.wait()


async def test_dropped_connection_is_a_1006_for_the_app(nursery: trio.Nursery) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="last words"))
    await served.client.aclose()
    await app.disconnected.wait()
    assert app.messages[1] == {"type": "websocket.receive", "text": "last words"}
    assert app.disconnect["code"] == 1006
    await served.done.wait()


async def test_send_after_the_app_closed_raises_client_disconnected(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except ClientDisconnected as exc:
            raised.append(exc)
        await send({"type": "websocket.send", "text": "let it escape"})

    served, client = await open_ws(nursery, app)
    assert (await client.expect_close()).code == 1000
    await served.done.wait()
    assert len(raised) == 1
    assert isinstance(raised[0], OSError)
    assert error_records(caplog) == []


async def test_send_after_the_client_left_raises_client_disconnected(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []
    app_done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
            await send({"type": "websocket.accept"})
            assert (await receive())["type"] == "websocket.disconnect"
            try:
                await send({"type": "websocket.send", "bytes": b"anyone?"})
            except ClientDisconnected as exc:
                raised.append(exc)
            await send({"type": "websocket.close"})  # escapes: the server must not log it
        finally:
            app_done.set()

    served, _ = await open_ws(nursery, app)
    await served.client.aclose()
    await app_done.wait()
    await served.done.wait()
    assert len(raised) == 1
    assert isinstance(raised[0], OSError)
    assert error_records(caplog) == []


async def test_receive_after_the_disconnect_needs_no_checkpoint(nursery: trio.Nursery) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        first = await receive()
        with trio.CancelScope() as cancelled:
            cancelled.cancel()
            seen.append(await receive())  # would raise Cancelled if it checkpointed
            seen.append(await receive())
        seen.insert(0, first)

    served, client = await open_ws(nursery, app)
    await client.send(CloseConnection(code=4004, reason="gone"))
    await client.expect_close(reply=False)
    await served.done.wait()
    expected = {"type": "websocket.disconnect", "code": 4004, "reason": "gone"}
    assert seen == [expected, expected, expected]


# -- the denial response extension -------------------------------------------------------


async def test_denial_response_is_sent_as_http(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        assert (await receive())["type"] == "websocket.connect"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        for part in (b"you ", b"", b"shall not "):
            await send({"type": "websocket.http.response.body", "body": part, "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"pass"})

    served = await start_connection(nursery, app)
    await served.client.send_all(WSClient(served.client).handshake_bytes())
    [response] = parse_responses(await read_until_eof(served.client))
    assert response.status == 401
    assert response.header(b"content-type") == b"text/plain"
    assert response.header(b"www-authenticate") == b"Bearer"
    assert response.body == b"you shall not pass"
    await finish(served)


async def test_denial_response_reaches_a_wsproto_client(nursery: trio.Nursery) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no such room"})

    served = await start_connection(nursery, app)
    client = WSClient(served.client)
    rejected = await client.connect()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 404
    body = b""
    while (event := await client.next_event()) is not None:
        body += event.data  # type: ignore[attr-defined]
    assert body == b"no such room"
    await finish(served)


# -- errors the server closes for --------------------------------------------------------


async def test_invalid_utf8_in_a_text_frame_closes_1007(nursery: trio.Nursery) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.stream.send_all(frame(TEXT, b"ok \xff\xfe"))
    close = await client.expect_close()
    assert close.code == 1007
    await app.disconnected.wait()
    assert app.disconnect["code"] == 1007
    assert len(app.messages) == 2  # no websocket.receive for the bad frame
    await served.done.wait()


@pytest.mark.parametrize(
    "frames",
    [
        [frame(BINARY, b"x" * 1025)],
        [frame(TEXT, b"x" * 600, fin=False), frame(CONTINUATION, b"x" * 600)],
        [frame(BINARY, b"x" * 1000, fin=False)] + [frame(CONTINUATION, b"x" * 1000, fin=False)] * 3,
    ],
    ids=["one-frame", "two-fragments", "endless-fragments"],
)
async def test_message_over_ws_max_size_closes_1009(
    nursery: trio.Nursery, frames: list[bytes]
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app, ws_max_size=1024)
    await client.send(BytesMessage(data=b"y" * 1024))  # exactly the limit is fine
    for data in frames:
        await client.stream.send_all(data)
    close = await client.expect_close()
    assert close.code == 1009
    await app.disconnected.wait()
    assert app.messages[1] == {"type": "websocket.receive", "bytes": b"y" * 1024}
    assert app.disconnect["code"] == 1009
    await served.done.wait()


@pytest.mark.parametrize(
    "bad_frame",
    [
        frame(TEXT, b"unmasked", mask=False),
        frame(0x3, b"reserved data opcode"),
        frame(0xB, b"reserved control opcode"),
        frame(TEXT, b"rsv1 without an extension", rsv=0b100),
        frame(PING, b"fragmented ping", fin=False),
        frame(PING, b"p" * 126),
        frame(CONTINUATION, b"continuation of nothing"),
        frame(TEXT, b"a", fin=False) + frame(TEXT, b"new message mid-fragment"),
        frame(CLOSE, b"\x03"),  # a one-byte close payload
        frame(CLOSE, (999).to_bytes(2, "big")),  # a close code outside the valid ranges
    ],
    ids=[
        "unmasked",
        "opcode-3",
        "opcode-11",
        "rsv1",
        "fragmented-control",
        "control-over-125-bytes",
        "orphan-continuation",
        "interleaved-data",
        "one-byte-close",
        "close-code-999",
    ],
)
async def test_protocol_error_closes_1002(nursery: trio.Nursery, bad_frame: bytes) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.stream.send_all(bad_frame)
    close = await client.expect_close()
    assert close.code == 1002
    await app.disconnected.wait()
    assert app.disconnect["code"] == 1002
    await served.done.wait()


async def test_app_exception_after_accept_closes_1011_and_is_logged_once(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ZeroDivisionError("the app broke")

    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="trigger"))
    assert (await client.expect_close()).code == 1011
    await served.done.wait()
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


async def test_app_returning_without_close_closes_1000(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})

    served, client = await open_ws(nursery, app)
    assert await client.next_message() == "bye"
    assert (await client.expect_close()).code == 1000
    await served.done.wait()
    assert error_records(caplog) == []


@pytest.mark.parametrize("ending", ["close frame", "dropped"])
async def test_app_ignoring_the_disconnect_is_cancelled_after_disconnect_timeout(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    ending: str,
) -> None:
    deadlock_guard(nursery)
    cancelled_at: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await trio.sleep_forever()  # never receives: never hears of the disconnect
        finally:
            cancelled_at.append(trio.current_time())

    served, client = await open_ws(nursery, app, disconnect_timeout=7.5)
    await trio.testing.wait_all_tasks_blocked()
    ended_at = trio.current_time()
    if ending == "close frame":
        await client.send(CloseConnection(code=1000))
        await client.expect_close(reply=False)
    else:
        await client.stream.aclose()
    await served.done.wait()
    [cancelled] = cancelled_at
    assert cancelled - ended_at == pytest.approx(7.5)
    assert error_records(caplog) == []


# -- keepalive pings (virtual time) ------------------------------------------------------


async def test_peer_that_misses_a_ping_is_dropped_with_1011(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    app = Recorder()
    start = trio.current_time()
    served, client = await open_ws(nursery, app, ws_ping_interval=5, ws_ping_timeout=3)
    event = await client.next_event()
    assert isinstance(event, Ping)  # never answered
    assert trio.current_time() - start == pytest.approx(5)
    event = await client.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == 1011
    assert trio.current_time() - start == pytest.approx(8)
    await app.disconnected.wait()
    assert app.disconnect["type"] == "websocket.disconnect"
    assert app.disconnect["code"] in (1006, 1011)
    assert await read_until_eof(client.stream) == b""
    await served.done.wait()


async def test_answered_pings_keep_the_connection_open(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    app = Recorder()
    served, client = await open_ws(nursery, app, ws_ping_interval=5, ws_ping_timeout=3)
    for _ in range(10):
        event = await client.next_event()
        assert isinstance(event, Ping)
        await client.send(event.response())
    assert trio.current_time() >= 50
    await client.send(TextMessage(data="still here"))
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await app.disconnected.wait()
    assert app.messages[1] == {"type": "websocket.receive", "text": "still here"}
    assert app.disconnect["code"] == 1000
    await served.done.wait()


async def test_no_pings_when_the_interval_is_zero(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    app = Recorder()
    served, client = await open_ws(nursery, app, ws_ping_interval=0)
    with trio.move_on_after(500):
        event = await client.next_event()
        raise AssertionError(f"expected silence, got {event!r}")
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()


# -- permessage-deflate ------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
async def test_permessage_deflate_is_negotiated_when_enabled(
    nursery: trio.Nursery, enabled: bool
) -> None:
    served = await start_connection(nursery, echo_app, ws_per_message_deflate=enabled)
    client = WSClient(served.client)
    accepted = await client.connect(extensions=[PerMessageDeflate()])
    assert isinstance(accepted, AcceptConnection)
    names = [extension.name for extension in accepted.extensions]
    assert names == (["permessage-deflate"] if enabled else [])
    for payload in ("a" * (1 << 20), "unicode ☃ " * 100):
        await client.send(TextMessage(data=payload))
        assert await client.next_message() == payload
    noise = os.urandom(1 << 16)
    await client.send(BytesMessage(data=noise))
    assert await client.next_message() == noise
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()


# -- backpressure ------------------------------------------------------------------------


async def test_reader_stops_at_ws_max_queue_and_resumes_when_the_app_receives(
    nursery: trio.Nursery,
) -> None:
    go = trio.Event()
    go_again = trio.Event()
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait()
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return
            if len(received) == 1:
                await go_again.wait()

    served, client = await open_ws(
        nursery, app, pair=trio.testing.lockstep_stream_pair, ws_max_queue=2
    )
    sent = 0

    async def send_messages() -> None:
        nonlocal sent
        for n in range(6):
            await client.send(TextMessage(data=f"m{n}"))  # returns once the server read it
            sent += 1

    nursery.start_soon(send_messages)
    await trio.testing.wait_all_tasks_blocked()
    assert sent == 2  # two messages wait for the app; the third is not read
    go.set()  # the app takes one message, then waits again
    await trio.testing.wait_all_tasks_blocked()
    assert len(received) == 1
    assert sent == 3  # one slot freed, one more message read
    go_again.set()
    await trio.testing.wait_all_tasks_blocked()
    assert sent == 6
    await client.send(CloseConnection(code=1000))
    await client.expect_close(reply=False)
    await served.done.wait()
    assert [m.get("text") for m in received[:-1]] == [f"m{n}" for n in range(6)]
    assert received[-1]["type"] == "websocket.disconnect"


# -- graceful shutdown, one connection ---------------------------------------------------


async def test_begin_shutdown_closes_an_open_websocket_with_1012(nursery: trio.Nursery) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app)
    await client.send(TextMessage(data="hello"))
    await trio.testing.wait_all_tasks_blocked()
    served.connection.begin_shutdown()
    assert (await client.expect_close()).code == 1012
    await app.disconnected.wait()
    assert app.disconnect["code"] == 1012
    await served.done.wait()


# -- any bytes after the handshake end in a close ----------------------------------------


FRAME_PARTS = st.sampled_from(
    [
        frame(TEXT, b"hello"),
        frame(BINARY, b"\x00\x01"),
        frame(TEXT, b"frag", fin=False),
        frame(CONTINUATION, b"ment"),
        frame(PING, b"p"),
        frame(PONG, b"unsolicited pong"),
        frame(CLOSE, (1000).to_bytes(2, "big")),
        frame(CLOSE, b""),
        frame(TEXT, b"\xff"),
        frame(TEXT, b"unmasked", mask=False),
        frame(0x3, b""),
        frame(BINARY, b"x" * 300),
        b"\x81",
        b"\x81\xfe",
        b"\x00",
    ]
)


async def feed_websocket(data: bytes, close_after: bool) -> list[Event]:
    """Hand-shake, send ``data`` (then an EOF if ``close_after``) and read until the EOF."""
    with trio.fail_after(60):  # virtual seconds: past every timeout of the driver
        async with trio.open_nursery() as nursery:
            served = await start_connection(
                nursery, echo_app, ws_max_size=256, ws_ping_interval=5, ws_ping_timeout=5
            )
            client = WSClient(served.client)
            accepted = await client.connect()
            assert isinstance(accepted, AcceptConnection)
            try:
                await served.client.send_all(data)
                if close_after:
                    await served.client.send_eof()
            except trio.BrokenResourceError:
                pass  # the server closed first: also an allowed ending
            raw = await read_until_eof(served.client)
            await served.done.wait()  # run() returned, and raised nothing
    client.ws.receive_data(raw)
    events = list(client.ws.events())
    if client.ws.state is not ConnectionState.REMOTE_CLOSING:
        client.ws.receive_data(None)  # no close frame: the EOF ends it
        events += list(client.ws.events())
    return events


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(st.binary(max_size=300), st.lists(FRAME_PARTS, max_size=8).map(b"".join)),
    close_after=st.booleans(),
)
def test_any_bytes_after_the_handshake_end_in_a_clean_close(data: bytes, close_after: bool) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    events = trio.run(feed_websocket, data, close_after, clock=clock)
    *before, last = events
    assert isinstance(last, CloseConnection)
    for event in before:
        # What the server sends before the end: echoes, pongs, pings; never a frame the
        # client side of wsproto reports as malformed (that would be a CloseConnection).
        assert isinstance(event, (Message, Ping, Pong)), event
