"""Tier 2: the HTTP/1.1 driver when the app fails or misuses ``send()``.

An exception at each stage of the response, an app that returns too early, a body that
disagrees with its Content-Length, malformed messages, and messages after the response.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_asgi import InvalidMessage, TrioASGIError, UnexpectedMessage

from ..helpers import H11Client, read_until_eof
from ..http11_tools import (
    START_200,
    error_records,
    finish,
    parse_responses,
    raw_request,
    respond,
    start_connection,
)

# -- exceptions in the app ---------------------------------------------------------------


async def test_exception_before_response_start_gives_500_and_one_log_record(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("boom")

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(target=b"/fail?x=1"))
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    assert response.header(b"content-type") == b"text/plain; charset=utf-8"
    assert response.body == b"500 Internal Server Error\n"
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    assert "GET /fail?x=1" in record.getMessage()


@pytest.mark.parametrize("fails", [True, False], ids=["raises", "returns"])
async def test_head_request_whose_app_fails_gets_a_500_without_body(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    # The error response must follow the HEAD rules too (RFC 9110 section 9.3.2).
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if fails:
            raise ValueError("boom")

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(b"HEAD"))
    raw = await read_until_eof(served.client)
    await finish(served)  # raises if an exception escaped HTTP11Connection.run
    [response] = parse_responses(raw, ["HEAD"])
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    assert raw.endswith(b"\r\n\r\n")
    assert len(error_records(caplog)) == 1


async def test_exception_after_start_but_before_body_gives_500(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)  # the head is held, so nothing has reached the client yet
        raise ValueError("boom")

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    assert len(error_records(caplog)) == 1


async def test_exception_after_first_body_chunk_truncates_and_closes(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(target=b"/1") + raw_request(target=b"/2"))
    raw = await read_until_eof(served.client)
    await served.done.wait()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n7\r\npartial\r\n")  # no last chunk: the client sees the cut
    assert raw.count(b"HTTP/1.1 ") == 1  # the pipelined second request is never answered
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError


async def test_app_returning_without_starting_gives_500_and_a_log(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    [record] = error_records(caplog)
    assert record.getMessage() == "ASGI callable returned without starting response."


async def test_app_returning_after_start_without_body_gives_500_and_a_log(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request())
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    # The 200 head was still held by the server, so a 500 replaces it; never a keep-alive.
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    [record] = error_records(caplog)
    assert record.getMessage() == "ASGI callable returned without completing response."


async def test_app_returning_mid_body_aborts_the_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START_200)
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request() + raw_request())
    raw = await read_until_eof(served.client)
    await served.done.wait()
    assert raw.endswith(b"\r\n\r\n7\r\npartial\r\n")
    assert raw.count(b"HTTP/1.1 ") == 1
    [record] = error_records(caplog)
    assert record.getMessage() == "ASGI callable returned without completing response."


async def test_exception_after_the_response_is_logged_and_the_connection_goes_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send, scope["path"].encode())
        raise ValueError("after the response")

    served = await start_connection(nursery, app)
    client = H11Client(served.client)
    assert (await client.request(target="/1")).body == b"/1"
    second = await client.request(target="/2")
    assert second.body == b"/2"
    assert second.header(b"connection") is None
    records = error_records(caplog)
    assert len(records) == 2  # one per request, each with its traceback
    assert all(record.exc_info is not None for record in records)


# -- send() misuse -----------------------------------------------------------------------


async def run_misbehaving_app(nursery: trio.Nursery, app: Any) -> bytes:
    """Serve one ``Connection: close`` request to ``app``; every byte the server answers."""
    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(headers=[(b"Host", b"t"), (b"Connection", b"close")]))
    raw = await read_until_eof(served.client)
    await finish(served)
    return raw


@pytest.mark.parametrize("body_messages", [[b"123456"], [b"123", b"456"], [b"12345", b"6"]])
async def test_body_longer_than_content_length_raises_and_closes(
    nursery: trio.Nursery, body_messages: list[bytes]
) -> None:
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            for body in body_messages:
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except RuntimeError as exc:
            errors.append(exc)

    raw = await run_misbehaving_app(nursery, app)
    [error] = errors
    assert isinstance(error, UnexpectedMessage)
    assert "Content-Length" in str(error)
    # Only bytes within the declared length are written, then the connection is closed.
    assert b"12345".startswith(raw.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("body_messages", [[b"12"], [b"12", b""], [b"", b"1234"]])
async def test_body_shorter_than_content_length_raises_at_the_final_chunk(
    nursery: trio.Nursery, body_messages: list[bytes]
) -> None:
    errors: list[tuple[int, Exception]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        last = len(body_messages) - 1
        for index, body in enumerate(body_messages):
            message = {"type": "http.response.body", "body": body, "more_body": index < last}
            try:
                await send(message)
            except RuntimeError as exc:
                errors.append((index, exc))

    raw = await run_misbehaving_app(nursery, app)
    [(index, error)] = errors
    assert index == len(body_messages) - 1
    assert isinstance(error, UnexpectedMessage)
    assert "Content-Length" in str(error)
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)


@pytest.mark.parametrize(
    ("before", "bad", "error_type", "match"),
    [
        ([], "not a dict", InvalidMessage, "must be a dict with a 'type' key"),
        ([], None, InvalidMessage, "must be a dict with a 'type' key"),
        ([], {}, InvalidMessage, "must be a dict with a 'type' key"),
        ([], {"status": 200}, InvalidMessage, "must be a dict with a 'type' key"),
        (
            [],
            {"type": "http.response.body", "body": b"x"},
            UnexpectedMessage,
            "Expected ASGI message 'http.response.start', but got 'http.response.body'",
        ),
        (
            [],
            {"type": "websocket.send", "text": "hi"},
            UnexpectedMessage,
            "Expected ASGI message 'http.response.start', but got 'websocket.send'",
        ),
        ([], {"type": "http.response.start", "status": "200"}, InvalidMessage, "'status'"),
        ([], {"type": "http.response.start", "status": 101}, InvalidMessage, "'status'"),
        (
            [],
            {"type": "http.response.start", "status": 200, "headers": [("a", "b")]},
            InvalidMessage,
            "bytes",
        ),
        (
            [],
            {"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]},
            InvalidMessage,
            "invalid header",
        ),
        (
            [],
            {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb: c")]},
            InvalidMessage,
            "invalid header",
        ),
        (
            [START_200],
            START_200,
            UnexpectedMessage,
            "'http.response.start' sent, after the response had already started",
        ),
        (
            [START_200],
            {"type": "http.disconnect"},
            UnexpectedMessage,
            "Expected ASGI message 'http.response.body', but got 'http.disconnect'",
        ),
        (
            [START_200],
            {"type": "http.response.body", "body": "text"},
            InvalidMessage,
            "'body' must be bytes",
        ),
        (
            [START_200],
            {"type": "http.response.body", "more_body": 1},
            InvalidMessage,
            "'more_body' must be a bool",
        ),
    ],
)
async def test_invalid_message_raises_and_the_response_can_still_be_sent(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    before: list[dict[str, Any]],
    bad: Any,
    error_type: type[Exception],
    match: str,
) -> None:
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for message in before:
            await send(message)
        try:
            await send(bad)
        except TrioASGIError as exc:
            errors.append(exc)
        if not before:
            await send(START_200)
        await send({"type": "http.response.body", "body": b"fine"})

    raw = await run_misbehaving_app(nursery, app)
    [error] = errors
    assert type(error) is error_type
    assert isinstance(error, TypeError if error_type is InvalidMessage else RuntimeError)
    assert match in str(error)
    [response] = parse_responses(raw)
    assert response.status == 200
    assert response.body == b"fine"
    assert error_records(caplog) == []


async def test_messages_after_the_response_completed_are_ignored_with_one_warning(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    # ASGI HTTP spec 2.5, "Response Body": once more_body is False, "any further messages on
    # the channel will be ignored". An unknown type still raises (spec, "Error Handling").
    errors: list[Exception] = []
    app_done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await respond(send, b"done")
        await send({"type": "http.response.body", "body": b"more"})
        await send(START_200)
        try:
            await send({"type": "http.response.bogus"})
        except UnexpectedMessage as exc:
            errors.append(exc)
        app_done.set()

    served = await start_connection(nursery, app)
    client = H11Client(served.client)
    assert (await client.request()).body == b"done"
    await app_done.wait()
    [unknown] = errors
    assert "'http.response.bogus'" in str(unknown)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [  # one per request, for the first message it ignored
        "ASGI app sent 'http.response.body' after its response to \"GET /\"; ignored (the "
        "response was complete: further messages are ignored, ASGI HTTP spec)",
    ]
    assert (await client.request()).body == b"done"  # the connection is unharmed
    assert error_records(caplog) == []
