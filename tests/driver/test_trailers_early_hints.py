"""Tier 2: the ASGI extensions ``http.response.trailers`` and ``http.response.early_hint``
through the HTTP/1.1 driver over memory streams, with each request parser.

Trailers go after the last chunk when the body is chunked and the request said ``TE:
trailers``; otherwise they are accepted and dropped. The response completes with the last
trailers message. Early hints go out as ``103 Early Hints`` until the final head is written.
"""

from __future__ import annotations

import logging
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import InvalidMessage, UnexpectedMessage

from ..helpers import read_until_eof
from ..http11_tools import error_records, finish, parse_responses, raw_request, start_connection

TE_CLOSE = ((b"Host", b"t"), (b"TE", b"trailers"), (b"Connection", b"close"))
CLOSE = ((b"Host", b"t"), (b"Connection", b"close"))
START_TRAILERS: dict[str, Any] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"trailer", b"x-checksum")],
    "trailers": True,
}
TIMEOUT = 5  # seconds: the bound on a test's waits; a passing test takes far less
LINK_CSS = b"</style.css>; rel=preload; as=style"
LINK_JS = b"</app.js>; rel=preload; as=script"


def trailers(*fields: tuple[bytes, bytes], more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.trailers", "headers": list(fields), "more_trailers": more}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def serve_one(app: Any, request: bytes, **config: Any) -> bytes:
    """Send ``request`` (which should say ``Connection: close``); every byte answered."""
    with trio.fail_after(TIMEOUT):
        return await _serve_one(app, request, **config)


async def _serve_one(app: Any, request: bytes, **config: Any) -> bytes:
    async with trio.open_nursery() as nursery:
        served = await start_connection(nursery, app, **config)
        await served.client.send_all(request)
        raw = await read_until_eof(served.client)
        await finish(served)
    return raw


def read_events(raw: bytes, method: str = "GET") -> list[Any]:
    """The h11 client events of one response in ``raw`` (up to its EndOfMessage)."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw)
    client.receive_data(b"")
    events = []
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert event is not h11.NEED_DATA, events
        events.append(event)
    events.append(event)
    return events


# -- trailers ----------------------------------------------------------------------------


async def trailers_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(START_TRAILERS)
    await send(body(b"hello ", more=True))
    await send(body(b"world"))
    await send(trailers((b"x-checksum", b"abc"), more=True))
    await send(trailers((b"Server-Timing", b"db;dur=53")))


async def test_trailers_sent_after_the_last_chunk_when_the_client_says_te_trailers() -> None:
    raw = await serve_one(trailers_app, raw_request(headers=TE_CLOSE))
    assert raw.endswith(
        b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n"
    )
    *_, end = read_events(raw)
    assert list(end.headers) == [(b"x-checksum", b"abc"), (b"server-timing", b"db;dur=53")]


async def test_trailers_on_a_higher_http_1_minor_version_served_as_1_1() -> None:
    # RFC 9110 section 2.5: HTTP/1.2 is served as 1.1, so its body can be chunked and the
    # trailers the scope advertised reach the client.
    raw = await serve_one(trailers_app, raw_request(http_version=b"1.2", headers=TE_CLOSE))
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"0\r\nx-checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n")


async def test_trailers_dropped_without_te_trailers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="trio_asgi.error"):
        raw = await serve_one(trailers_app, raw_request(headers=CLOSE))
    assert raw.endswith(b"5\r\nworld\r\n0\r\n\r\n")
    [response] = parse_responses(raw)
    assert response.body == b"hello world"
    assert "HTTP trailers will be dropped: the client did not send 'TE: trailers'" in [
        r.getMessage() for r in caplog.records
    ]


async def test_trailers_dropped_on_a_content_length_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({**START_TRAILERS, "headers": [(b"content-length", b"5")]})
        await send(body(b"hello"))
        await send(trailers((b"x-checksum", b"abc")))

    with caplog.at_level(logging.DEBUG, logger="trio_asgi.error"):
        raw = await serve_one(app, raw_request(headers=TE_CLOSE))
    assert raw.endswith(b"content-length: 5\r\nconnection: close\r\n\r\nhello")
    assert b"x-checksum" not in raw
    assert "HTTP trailers will be dropped: the body is not chunked" in [
        r.getMessage() for r in caplog.records
    ]
    assert not error_records(caplog)


async def test_trailers_dropped_on_http_1_0_and_head(caplog: pytest.LogCaptureFixture) -> None:
    raw = await serve_one(trailers_app, raw_request(headers=TE_CLOSE, http_version=b"1.0"))
    assert raw.endswith(b"\r\n\r\nhello world")  # delimited by the close
    assert b"x-checksum: abc" not in raw
    raw = await serve_one(trailers_app, raw_request(b"HEAD", headers=TE_CLOSE))
    assert raw.endswith(b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
    [response] = parse_responses(raw, methods=["HEAD"])
    assert response.status == 200
    assert not error_records(caplog)


async def test_response_completes_with_the_last_trailers_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Until the last trailers message, the body's end is held, no access-log line is
    written and a pipelined request waits; then both responses go out in order."""
    trailers_may_go = trio.Event()
    calls = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send(START_TRAILERS)
        await send(body(b"hi"))
        if calls == 1:
            await trailers_may_go.wait()
        await send(trailers((b"x-checksum", b"abc")))

    keep_alive = ((b"Host", b"t"), (b"TE", b"trailers"))
    with caplog.at_level(logging.INFO, logger="trio_asgi.access"), trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            served = await start_connection(nursery, app, access_log=True)
            await served.client.send_all(raw_request(headers=keep_alive) * 2)
            await trio.testing.wait_all_tasks_blocked()
            first = await served.client.receive_some()
            assert first.endswith(b"2\r\nhi\r\n")  # no last chunk yet
            assert calls == 1
            assert not [r for r in caplog.records if r.name == "trio_asgi.access"]
            trailers_may_go.set()
            raw = bytearray(first)
            while raw.count(b"0\r\nx-checksum: abc\r\n\r\n") < 2:
                raw += await served.client.receive_some()
            await finish(served)
    assert calls == 2
    assert len(parse_responses(bytes(raw), methods=["GET", "GET"])) == 2
    assert len([r for r in caplog.records if r.name == "trio_asgi.access"]) == 2


async def test_app_that_returns_without_its_trailers_is_aborted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The spec makes the trailers message part of the response: without it the response
    is incomplete, so the connection is aborted (the chunked body never ends)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_TRAILERS)
        await send(body(b"hi"))

    raw = await serve_one(app, raw_request(headers=TE_CLOSE))
    assert raw.endswith(b"2\r\nhi\r\n")
    with pytest.raises(h11.RemoteProtocolError):
        read_events(raw)
    assert [r.getMessage() for r in error_records(caplog)] == [
        "ASGI callable returned without completing response."
    ]


@pytest.mark.parametrize(
    ("messages", "error", "text"),
    [
        pytest.param(
            [START_TRAILERS, trailers()],
            UnexpectedMessage,
            "before the last 'http.response.body'",
            id="trailers-before-the-body-ended",
        ),
        pytest.param(
            [START_TRAILERS, body(b"hi"), trailers((b"content-length", b"2"))],
            InvalidMessage,
            "must not carry b'content-length'",
            id="forbidden-field",
        ),
        pytest.param(
            [START_TRAILERS, body(b"hi"), trailers((b"x-a", b"1\r\nx-b: 2"))],
            InvalidMessage,
            "invalid value",
            id="crlf-in-value",
        ),
        pytest.param(
            [{**START_TRAILERS, "trailers": "yes"}],
            InvalidMessage,
            "'trailers' must be a bool",
            id="trailers-not-a-bool",
        ),
    ],
)
async def test_trailer_misuse_raises_from_send(
    messages: list[dict[str, Any]], error: type[Exception], text: str
) -> None:
    raised: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            for message in messages:
                await send(message)
        except (InvalidMessage, UnexpectedMessage) as exc:
            raised.append(exc)

    await serve_one(app, raw_request(headers=TE_CLOSE))
    [exc] = raised
    assert type(exc) is error
    assert text in str(exc)


async def test_trailers_only_after_the_announced_body() -> None:
    """A body after the last body message is refused, and the trailers still end the
    response; trailers that ``http.response.start`` did not announce are refused."""
    raised: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        announce = scope["path"] == "/announced"
        await send({**START_TRAILERS, "trailers": announce})
        await send(body(b"hi", more=not announce))
        try:
            await send(body(b"again") if announce else trailers())
        except UnexpectedMessage as exc:
            raised.append(str(exc))
        await send(trailers((b"x-checksum", b"abc")) if announce else body(b""))

    raw = await serve_one(app, raw_request(target=b"/announced", headers=TE_CLOSE))
    assert raw.endswith(b"2\r\nhi\r\n0\r\nx-checksum: abc\r\n\r\n")
    raw = await serve_one(app, raw_request(headers=TE_CLOSE))
    assert raw.endswith(b"2\r\nhi\r\n0\r\n\r\n")
    assert raised == [
        "Unexpected ASGI message 'http.response.body' sent, "
        "after the last body message (the trailers are due).",
        "Expected ASGI message 'http.response.body', but got 'http.response.trailers'.",
    ]


async def test_trailers_after_the_response_completed_are_ignored() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_TRAILERS)
        await send(body(b"hi"))
        await send(trailers((b"x-checksum", b"abc")))
        await send(trailers((b"x-late", b"1")))  # "further messages ... will be ignored"

    raw = await serve_one(app, raw_request(headers=TE_CLOSE))
    assert raw.endswith(b"0\r\nx-checksum: abc\r\n\r\n")


# -- early hints -------------------------------------------------------------------------


async def test_early_hints_before_the_response() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": [LINK_CSS, LINK_JS]})
        await send({"type": "http.response.early_hint", "links": (LINK_JS,)})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint", "links": [LINK_CSS]})  # head held
        await send(body(b"page"))

    raw = await serve_one(app, raw_request(headers=CLOSE))
    assert raw.startswith(
        b"HTTP/1.1 103 Early Hints\r\nlink: " + LINK_CSS + b"\r\nlink: " + LINK_JS + b"\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nlink: " + LINK_JS + b"\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nlink: " + LINK_CSS + b"\r\n\r\nHTTP/1.1 200 OK\r\n"
    )
    [response] = parse_responses(raw)
    assert response.informational == [103, 103, 103]
    assert response.body == b"page"


async def test_early_hint_returns_once_written() -> None:
    hint_sent = trio.Event()
    respond_now = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": [LINK_CSS]})
        hint_sent.set()
        await respond_now.wait()
        await send({"type": "http.response.start", "status": 204})
        await send(body(b""))

    async with trio.open_nursery() as nursery:
        served = await start_connection(nursery, app)
        await served.client.send_all(raw_request(headers=CLOSE))
        with trio.fail_after(TIMEOUT):
            await hint_sent.wait()
        assert await served.client.receive_some() == (
            b"HTTP/1.1 103 Early Hints\r\nlink: " + LINK_CSS + b"\r\n\r\n"
        )
        respond_now.set()
        rest = await read_until_eof(served.client)
        await finish(served)
    assert rest.startswith(b"HTTP/1.1 204 No Content\r\n")


async def test_early_hints_ignored_on_http_1_0_and_after_the_head(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": [LINK_CSS]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(body(b"pa", more=True))
        await send({"type": "http.response.early_hint", "links": [LINK_JS]})
        await send(body(b"ge"))
        await send({"type": "http.response.early_hint", "links": [LINK_JS]})

    raw = await serve_one(app, raw_request(headers=CLOSE, http_version=b"1.0"))
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Early Hints" not in raw
    assert b"link:" not in raw
    raw = await serve_one(app, raw_request(headers=CLOSE))
    assert raw.count(b"103 Early Hints") == 1
    assert LINK_JS not in raw
    assert parse_responses(raw)[0].body == b"page"
    assert not error_records(caplog)


async def test_invalid_early_hint_raises() -> None:
    raised: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.early_hint", "links": [b"</a>\r\nx: y"]})
        except InvalidMessage as exc:
            raised.append(exc)
        await send({"type": "http.response.start", "status": 204})
        await send(body(b""))

    raw = await serve_one(app, raw_request(headers=CLOSE))
    assert raw.startswith(b"HTTP/1.1 204 No Content\r\n")
    [exc] = raised
    assert "invalid link" in str(exc)


async def test_error_response_still_follows_an_early_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": [LINK_CSS]})
        raise RuntimeError("boom")

    raw = await serve_one(app, raw_request(headers=CLOSE))
    [response] = parse_responses(raw)
    assert response.informational == [103]
    assert response.status == 500
    assert len(error_records(caplog)) == 1


# -- advertising -------------------------------------------------------------------------


async def test_scope_advertises_the_extensions_on_http_1_1_only() -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(
            set(scope["extensions"]) & {"http.response.trailers", "http.response.early_hint"}
        )
        await send({"type": "http.response.start", "status": 204})
        await send(body(b""))

    await serve_one(app, raw_request(headers=CLOSE))
    await serve_one(app, raw_request(headers=CLOSE, http_version=b"1.0"))
    assert seen == [{"http.response.trailers", "http.response.early_hint"}, set()]
