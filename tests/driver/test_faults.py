"""Tier 2: faults a server on the internet meets, where the driver alone is the point.

Memory streams and hypothesis for arbitrary splits of valid requests, and a stream that
fails on cue for a bug in one connection. Resets, half-closes and stalled readers need real
sockets: tests/integration/test_faults.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_asgi._connection import handle_connection, open_connection

from ..helpers import H11Client, hello_app, parse_responses, read_until_eof
from ..http11_tools import failing_pair, raw_request, read_body, respond, start_connection

TIMEOUT = 5  # seconds: the bound on any single wait


# -- arbitrary splits of valid requests ----------------------------------------------------

PIPELINE = (
    raw_request(b"GET", b"/a?x=1")
    + raw_request(
        b"POST", b"/b", headers=[(b"Host", b"t"), (b"Content-Length", b"5")], body=b"hello"
    )
    + b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    + raw_request(b"HEAD", b"/d")
    + raw_request(b"GET", b"/e", headers=[(b"Host", b"t"), (b"Connection", b"close")])
)
METHODS = ["GET", "POST", "POST", "HEAD", "GET"]


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b"".join(m.get("body", b"") for m in await read_body(receive))
    await respond(send, scope["method"].encode() + b" " + scope["path"].encode() + b" " + body)


async def serve_in_pieces(pieces: list[bytes]) -> bytes:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            served = await start_connection(nursery, echo_app)
            for piece in pieces:
                await served.client.send_all(piece)
            return await read_until_eof(served.client)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_of_valid_requests_gives_the_same_responses(cuts: list[int]) -> None:
    raw = trio.run(
        serve_in_pieces, split(PIPELINE, cuts), clock=trio.testing.MockClock(autojump_threshold=0)
    )
    responses = parse_responses(raw, METHODS)
    assert [r.body for r in responses] == [
        b"GET /a ",
        b"POST /b hello",
        b"POST /c abcde",
        b"",
        b"GET /e ",
    ]
    assert [r.status for r in responses] == [200] * 5


# -- a bug in one connection never ends the server -------------------------------------------


async def test_a_connection_that_fails_unexpectedly_is_logged_and_the_server_serves_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception nothing expects, raised where the reader reads (a stream that fails on
    cue), ends that connection only: logged once with its traceback, the stream closed with
    nothing sent, ``handle_connection`` returns instead of raising into the connections
    nursery, and the next connection on the same server context is served."""
    broken = await start_connection(
        nursery, hello_app, pair=failing_pair(RuntimeError("a bug in the reader"))
    )
    with trio.fail_after(TIMEOUT):
        assert await read_until_eof(broken.client) == b""  # closed, nothing sent
        await broken.done.wait()
        assert broken.connection not in broken.context.connections
        client, server = trio.testing.memory_stream_pair()
        second = open_connection(server, broken.context, broken.connection.settings)
        nursery.start_soon(handle_connection, second)
        assert (await H11Client(client).request()).body == b"Hello, world!"
        await client.aclose()
    logged = [r for r in caplog.records if r.getMessage().startswith("Unexpected error on")]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    caplog.clear()  # expected here: the autouse check fails any other test that logs it
