"""Tier 2: the HTTP/1.1 driver fed malformed or refused requests, and arbitrary bytes.

Every malformed request gets the status h11 suggests (or the one the RFCs ask for where h11
lets the request through), ``Connection: close`` and an EOF; a hypothesis test checks that
no input makes an exception escape ``HTTP11Connection.run``.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..helpers import H11Client, hello_app, read_until_eof
from ..http11_tools import (
    deadlock_guard,
    error_records,
    finish,
    parse_responses,
    raw_request,
    read_body,
    respond,
    start_connection,
)

# -- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\n: no-name\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (17 * 1024), 431),
        (b"GET /" + b"a" * (17 * 1024), 431),
    ],
    ids=[
        "garbage",
        "no-request-line",
        "bad-header-line",
        "empty-header-name",
        "no-host",
        "bad-content-length",
        "conflicting-content-length",
        "unknown-transfer-encoding",
        "header-block-over-16KiB",
        "request-line-over-16KiB",
    ],
)
async def test_malformed_request_gets_its_status_and_a_close(
    nursery: trio.Nursery, request_bytes: bytes, status: int
) -> None:
    app_called = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal app_called
        app_called = True

    served = await start_connection(nursery, app)
    await served.client.send_all(request_bytes)
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == status
    assert response.header(b"connection") == b"close"
    assert response.body.startswith(str(status).encode())
    assert not app_called


@pytest.mark.parametrize("target", [b"/a#frag", b"/"], ids=["fragment", "smuggling-shape"])
async def test_refused_head_request_gets_its_status_without_body(
    nursery: trio.Nursery, target: bytes
) -> None:
    headers = [(b"Host", b"t")]
    if target == b"/":
        headers += [(b"Content-Length", b"0"), (b"Transfer-Encoding", b"chunked")]
    served = await start_connection(nursery, hello_app)
    await served.client.send_all(raw_request(b"HEAD", target, headers))
    raw = await read_until_eof(served.client)
    await finish(served)  # raises if an exception escaped HTTP11Connection.run
    [response] = parse_responses(raw, ["HEAD"])
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    assert raw.endswith(b"\r\n\r\n")


async def test_header_block_over_16KiB_sent_in_pieces_gets_431(nursery: trio.Nursery) -> None:
    served = await start_connection(nursery, hello_app)
    await served.client.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
    for index in range(40):
        await trio.testing.wait_all_tasks_blocked()
        try:
            await served.client.send_all(b"X-H%d: %s\r\n" % (index, b"v" * 500))
        except trio.BrokenResourceError:
            break  # the server gave up on us already
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 431
    assert response.header(b"connection") == b"close"


async def test_malformed_request_after_a_good_one(nursery: trio.Nursery) -> None:
    served = await start_connection(nursery, hello_app)
    await served.client.send_all(raw_request() + b"GARBAGE\r\n\r\n")
    first, second = parse_responses(await read_until_eof(served.client), ["GET", "GET"])
    await finish(served)
    assert first.status == 200
    assert first.body == b"Hello, world!"
    assert second.status == 400
    assert second.header(b"connection") == b"close"


async def test_malformed_body_makes_receive_return_disconnect(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages.extend(await read_body(receive))

    served = await start_connection(nursery, app)
    await served.client.send_all(
        raw_request(b"POST", b"/", [(b"Host", b"t"), (b"Transfer-Encoding", b"chunked")])
        + b"3\r\nabc\r\n"
    )
    await trio.testing.wait_all_tasks_blocked()
    await served.client.send_all(b"zz\r\n")  # not a chunk size
    [response] = parse_responses(await read_until_eof(served.client), ["POST"])
    await finish(served)
    assert messages == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    # The app did what ASGI asks (it stopped at http.disconnect): nothing to blame it for.
    assert error_records(caplog) == []


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # RFC 9112 section 3.2: a request-target has no fragment; an invalid request-line
        # SHOULD get a 400. (trio_asgi._http.scope.split_target documents that one cannot appear.)
        pytest.param(raw_request(target=b"/a#frag"), 400, id="fragment-in-target"),
        # RFC 9110 section 15.6.6: 505 for a major version the server does not support; the
        # ASGI spec allows scope["http_version"] to be only "1.0", "1.1" or "2".
        pytest.param(raw_request(http_version=b"2.0"), 505, id="http-2.0"),
    ],
)
async def test_refused_request_never_reaches_the_app(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    request_bytes: bytes,
    status: int,
) -> None:
    deadlock_guard(nursery)
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(request_bytes)
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert scopes == []
    assert response.status == status


async def test_request_with_a_higher_minor_version_is_served_as_http_1_1(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    # RFC 9112 section 2.3: a higher minor version is processed as the highest minor version
    # the recipient implements; ASGI allows scope["http_version"] to be "1.0", "1.1" or "2".
    versions: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        versions.append(scope["http_version"])
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(raw_request(http_version=b"1.2"))
    reader = H11Client(served.client)
    reader.request_bytes()
    response = await reader.read_response()
    assert response.status == 200
    assert response.http_version == b"1.1"
    assert versions == ["1.1"]


async def test_request_with_both_content_length_and_chunked_is_refused(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlock_guard(nursery)
    # RFC 9112 section 6.1: the server MAY reject such a request, and must never keep the
    # connection open after it (the classic request-smuggling shape).
    called = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(
        raw_request(
            b"POST",
            b"/",
            [(b"Host", b"t"), (b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
            b"3\r\nabc\r\n0\r\n\r\n",
        )
        + raw_request()  # a request smuggled behind the ambiguous one must not be served
    )
    raw = await read_until_eof(served.client)
    await finish(served)
    [response] = parse_responses(raw, ["POST"])
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    assert raw.count(b"HTTP/1.1 ") == 1
    assert not called


# -- any bytes end in a response or a close ----------------------------------------------


async def echo_length_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    messages = await read_body(receive)
    await respond(send, str(sum(len(m.get("body", b"")) for m in messages)).encode())


async def failing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise ValueError("the app failed")


#: ``echo`` waits for the whole body, so it is only used when the client ends with an EOF
#: (a client that stalls mid-body holds its request open for as long as it likes).
APPS = {"hello": hello_app, "fail": failing_app, "echo": echo_length_app}


async def feed_connection(data: bytes, app_name: str, close_after: bool) -> bytes:
    """Send ``data`` (then an EOF if ``close_after``); every byte until the server's EOF."""
    with trio.fail_after(60):  # virtual seconds: far past every timeout of the driver
        async with trio.open_nursery() as nursery:
            served = await start_connection(nursery, APPS[app_name])
            try:
                await served.client.send_all(data)
                if close_after:
                    await served.client.send_eof()
            except trio.BrokenResourceError:
                pass  # the server closed first: also an allowed ending
            raw = await read_until_eof(served.client)
            await served.done.wait()  # run() returned, and raised nothing
    return raw


REQUEST_PARTS = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /p?q HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HEAD /#f HTTP/1.0\r\n",
        b"GET / HTTP/1.1\r\n",
        b"Host: t\r\n",
        b"3\r\nabc\r\n",
        b"0\r\n\r\n",
        b"Expect: 100-continue\r\n",
        b"Connection: close\r\n",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b" ",
        b"\x00",
    ]
)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(st.binary(max_size=200), st.lists(REQUEST_PARTS, max_size=8).map(b"".join)),
    app_name=st.sampled_from(sorted(APPS)),
    close_after=st.booleans(),
)
def test_any_bytes_end_in_a_response_or_a_close(
    data: bytes, app_name: str, close_after: bool
) -> None:
    close_after = close_after or app_name == "echo"
    clock = trio.testing.MockClock(autojump_threshold=0)
    raw = trio.run(feed_connection, data, app_name, close_after, clock=clock)
    assert raw == b"" or raw.startswith(b"HTTP/1.1 ")
