"""Tier 2: what a WebSocket peer can make the server hold or do (RFC 6455 section 10.4).

Each test runs one connection over memory streams (``lockstep_stream_pair`` where the test
is about when the server reads) and a client-side wsproto (tests/websocket_tools.py):

- permessage-deflate bombs (RFC 7692 section 7.2.2): a message is inflated only within
  ``ws_max_size`` plus one byte, then refused with 1009, before and after the accept;
- the receive queue is bounded in bytes as well as in messages (backpressure on memory);
- fragment floods: fragments are joined as they arrive, and every fragment counts as at
  least ``FRAGMENT_MIN_SIZE`` bytes toward ``ws_max_size``;
- fairness: one read of many tiny frames is parsed in steps, with other tasks in between.

Memory is measured with ``tracemalloc`` around the server's work (what it allocated and
still holds, or the peak), never with the process's RSS.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from ..helpers import read_until_eof
from ..http11_tools import Served, start_connection
from ..websocket_tools import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    Recorder,
    WSClient,
    echo_app,
    frame,
)

KIB = 1024
MIB = 1024 * KIB
N_FRAGMENTS = 5000


class GatedApp:
    """A WebSocket app that accepts, then receives nothing until ``go`` is set; from then on
    it records every ``websocket.receive`` message in ``received`` until the disconnect."""

    def __init__(self) -> None:
        self.go = trio.Event()
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await self.go.wait()
        while (message := await receive())["type"] != "websocket.disconnect":
            self.received.append(message)


@contextmanager
def traced() -> Iterator[list[int]]:
    """Trace allocations in the block; yields ``[held, peak]`` (bytes), filled at its end."""
    result = [0, 0]
    tracemalloc.start()
    try:
        yield result
        result[:] = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


async def open_ws(
    nursery: trio.Nursery, app: Any, *, deflate: bool = False, pair: Any = None, **config: Any
) -> tuple[Served, WSClient]:
    """A connection under test and a client that completed the handshake."""
    served = await start_connection(
        nursery, app, pair=pair or trio.testing.memory_stream_pair, ws_ping_interval=0, **config
    )
    client = WSClient(served.client)
    extensions = [PerMessageDeflate()] if deflate else []
    accepted = await client.connect(extensions=extensions)
    assert isinstance(accepted, AcceptConnection), accepted
    assert bool(accepted.extensions) is deflate
    return served, client


def deflated(data: bytes) -> bytes:
    """``data`` as one permessage-deflate payload (RFC 7692 section 7.2.1), fresh context."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return payload[:-4]


# -- permessage-deflate bombs ------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, 1001])
async def test_a_compressed_message_may_inflate_to_exactly_ws_max_size(
    nursery: trio.Nursery, size: int
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app, deflate=True, ws_max_size=1000)
    await client.send(TextMessage(data="a" * 10))  # the inflater's context carries over
    await client.send(BytesMessage(data=b"z" * size))
    if size == 1000:
        await client.send(TextMessage(data="after"))
        await trio.testing.wait_all_tasks_blocked()
        assert [m.get("text") or m.get("bytes") for m in app.messages[1:]] == [
            "a" * 10,
            b"z" * 1000,
            "after",
        ]
        await served.client.aclose()
    else:
        close = await client.expect_close()
        assert (close.code, close.reason) == (1009, "message too big")
        assert app.disconnect["code"] == 1009
        assert [m.get("text") for m in app.messages[1:-1]] == ["a" * 10]
    await served.done.wait()


async def test_a_deflate_bomb_is_refused_with_1009_before_it_is_inflated(
    nursery: trio.Nursery,
) -> None:
    """16 MiB of zeros in ~16 KB, one read: the server inflates ~64 KiB, then refuses."""
    app = Recorder()
    served, client = await open_ws(nursery, app, deflate=True, ws_max_size=64 * KIB)
    bomb = client.ws.send(BytesMessage(data=bytes(16 * MIB)))
    assert len(bomb) < 32 * KIB
    with traced() as memory:
        await client.stream.send_all(bomb)
        close = await client.expect_close()
        await app.disconnected.wait()
    assert close.code == 1009
    assert app.disconnect["code"] == 1009
    assert len(app.messages) == 2  # the connect, then the disconnect: nothing delivered
    _, peak = memory
    assert peak < 1 * MIB, f"the server allocated {peak} bytes at its peak"
    await served.done.wait()


async def test_a_refused_compressed_message_is_dropped_at_once(nursery: trio.Nursery) -> None:
    """A bomb in fragments: what was inflated of it is let go with the 1009, not held until
    the connection ends."""
    app = Recorder()
    # Larger than what one piece of compressed input can inflate to: pieces are accepted
    # and joined before the budget runs out.
    served, client = await open_ws(nursery, app, deflate=True, ws_max_size=5 * MIB)
    payload = deflated(bytes(16 * MIB))
    bomb = frame(BINARY, payload[:4000], fin=False, rsv=0b100)
    bomb += frame(CONTINUATION, payload[4000:], fin=False)
    with traced() as memory:
        await client.stream.send_all(bomb)
        close = await client.expect_close()
        await app.disconnected.wait()
    assert close.code == 1009
    held, _ = memory
    assert held < 256 * KIB, f"{held} bytes still held after the 1009"
    assert served.connection.websocket is not None  # the session is still there
    await served.done.wait()


async def test_frames_that_come_before_the_accept_have_the_same_budget(
    nursery: trio.Nursery,
) -> None:
    """The handshake and a bomb in one write: parsed once accepted, within the budget."""
    go = trio.Event()
    app = Recorder()

    async def late_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await go.wait()
        await app(scope, receive, send)

    served = await start_connection(nursery, late_accept, ws_max_size=64 * KIB, ws_ping_interval=0)
    client = WSClient(served.client)
    handshake = client.handshake_bytes(extensions=[PerMessageDeflate()])
    bomb = frame(BINARY, deflated(bytes(16 * MIB)), rsv=0b100)
    assert len(bomb) < 32 * KIB
    with traced() as memory:
        await client.stream.send_all(handshake + bomb)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
        accepted = await client.next_event()
        assert isinstance(accepted, AcceptConnection)
        assert accepted.extensions  # permessage-deflate was negotiated
        close = await client.expect_close()
    assert close.code == 1009
    assert app.disconnect["code"] == 1009
    _, peak = memory
    assert peak < 1 * MIB, f"the server allocated {peak} bytes at its peak"
    await served.done.wait()


# -- the receive queue is bounded in bytes -----------------------------------------------


async def test_the_reader_stops_once_queued_messages_hold_ws_max_size_bytes(
    nursery: trio.Nursery,
) -> None:
    app = GatedApp()
    go, received = app.go, app.received

    served, client = await open_ws(
        nursery, app, pair=trio.testing.lockstep_stream_pair, ws_max_size=1000
    )
    sent = 0

    async def send_messages() -> None:
        nonlocal sent
        for n in range(6):
            await client.send(BytesMessage(data=bytes([n]) * 600))  # returns once read
            sent += 1

    nursery.start_soon(send_messages)
    await trio.testing.wait_all_tasks_blocked()
    assert sent == 2  # 1200 bytes wait for the app (of ws_max_queue=32 messages): no more
    go.set()
    await trio.testing.wait_all_tasks_blocked()
    assert sent == 6
    await served.client.aclose()
    await served.done.wait()
    assert [m.get("bytes") for m in received[:6]] == [bytes([n]) * 600 for n in range(6)]


async def test_a_full_queue_stops_parsing_inside_one_read(nursery: trio.Nursery) -> None:
    """Eight compressed messages of 90,000 bytes and a ping in one read: the server parses
    until the queue holds ws_max_size bytes, and answers the ping only as the app catches up.
    """
    app = GatedApp()
    go, received = app.go, app.received

    served, client = await open_ws(nursery, app, deflate=True, ws_max_size=100_000)
    burst = b"".join(client.ws.send(BytesMessage(data=bytes(90_000))) for _ in range(8))
    burst += client.ws.send(Ping(payload=b"are you there"))
    assert len(burst) < 4 * KIB  # one read
    with traced() as memory:
        await client.stream.send_all(burst)
        await trio.testing.wait_all_tasks_blocked()
    held, _ = memory
    assert held < 400_000, f"the server holds {held} bytes for a 100,000-byte queue"
    go.set()
    assert isinstance(await client.next_event(), Pong)  # parsed once the app took them
    assert [m["bytes"] for m in received] == [bytes(90_000)] * 8
    await served.client.aclose()
    await served.done.wait()


async def test_the_message_being_received_counts_toward_the_queue_bound(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A queued message of 600 bytes, then fragments of another: parsing stops once the two
    hold ws_max_size (1000) bytes, so the ping after them waits for the app."""
    app = GatedApp()
    go, received = app.go, app.received

    served, client = await open_ws(nursery, app, ws_max_size=1000)
    burst = frame(BINARY, b"a" * 600)
    burst += frame(BINARY, b"b" * 300, fin=False) + frame(CONTINUATION, b"c" * 300, fin=False)
    burst += frame(PING, b"p") + frame(CONTINUATION, b"d" * 300)
    await client.stream.send_all(burst)
    with trio.move_on_after(10):
        await client.next_event()
        raise AssertionError("the ping was answered while the app held the queue")
    go.set()
    assert isinstance(await client.next_event(), Pong)
    await trio.testing.wait_all_tasks_blocked()
    assert [m["bytes"] for m in received] == [b"a" * 600, b"b" * 300 + b"c" * 300 + b"d" * 300]
    await served.client.aclose()
    await served.done.wait()


# -- fragment floods ---------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_a_flood_of_empty_fragments_reaches_ws_max_size(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, opcode: int
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app, ws_max_size=60_000)
    flood = frame(opcode, b"", fin=False) + frame(CONTINUATION, b"", fin=False) * 20_000
    await client.stream.send_all(flood)
    with trio.fail_after(100):
        close = await client.expect_close()
    assert close.code == 1009
    assert app.disconnect["code"] == 1009
    assert len(app.messages) == 2
    await served.done.wait()


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_fragments_are_joined_as_they_arrive(nursery: trio.Nursery, opcode: int) -> None:
    """5,000 two-byte fragments of one message: the server holds the 10 KB it has so far
    (~55 KB with what a connection holds anyway), not 5,000 objects (~260 KB)."""
    app = Recorder()
    served, client = await open_ws(nursery, app)
    flood = frame(opcode, b"ab", fin=False) + frame(CONTINUATION, b"cd", fin=False) * (
        N_FRAGMENTS - 1
    )
    await client.stream.send_all(flood)  # before tracing: the stream's buffer is not counted
    with traced() as memory:
        await trio.testing.wait_all_tasks_blocked()
        held_mid_message, _ = tracemalloc.get_traced_memory()
        await client.stream.send_all(frame(CONTINUATION, b"!"))
        await trio.testing.wait_all_tasks_blocked()
    assert held_mid_message < 150_000, f"{held_mid_message} bytes held for a 10 KB message"
    expected = "ab" + "cd" * (N_FRAGMENTS - 1) + "!"
    message = app.messages[1]
    assert message.get("text" if opcode == TEXT else "bytes") == (
        expected if opcode == TEXT else expected.encode()
    )
    assert memory[1] < 1 * MIB
    await served.client.aclose()
    await served.done.wait()


async def test_text_counts_utf8_bytes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    app = Recorder()
    served, client = await open_ws(nursery, app, ws_max_size=1000)
    await client.send(TextMessage(data="é" * 500))  # 1000 bytes in UTF-8: the limit
    await client.send(TextMessage(data="é" * 501))  # 501 characters, 1002 bytes
    with trio.fail_after(100):
        close = await client.expect_close()
    assert close.code == 1009
    assert app.messages[1] == {"type": "websocket.receive", "text": "é" * 500}
    await served.done.wait()


# -- fairness ----------------------------------------------------------------------------


async def test_one_read_of_tiny_frames_lets_other_tasks_run(nursery: trio.Nursery) -> None:
    """3,000 tiny messages and a ping in one read: the app echoes the first message before
    the reader has parsed up to the ping (a reader that parsed the whole read in one go
    would answer the ping first)."""
    served, client = await open_ws(nursery, echo_app, ws_max_queue=10_000)
    burst = b"".join(client.ws.send(TextMessage(data=f"{n}")) for n in range(3000))
    burst += client.ws.send(Ping(payload=b"p"))
    assert len(burst) < 60 * KIB  # one read
    await client.stream.send_all(burst)
    first = await client.next_event()
    assert isinstance(first, TextMessage), first
    assert first.data == "0"
    events: list[Any] = [first]
    while not isinstance(events[-1], Pong):
        event = await client.next_event()
        assert event is not None
        events.append(event)
    assert [e.data for e in events[:-1]] == [f"{n}" for n in range(len(events) - 1)]
    assert len(events) - 1 < 3000  # the pong came before the last echo
    await served.client.aclose()
    await served.done.wait()


async def test_a_ping_after_our_close_frame_gets_no_pong(nursery: trio.Nursery) -> None:
    """RFC 6455 section 5.5.1: nothing follows our close frame (wsproto refuses a pong then)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    served, client = await open_ws(nursery, app)
    close = await client.next_event()
    assert isinstance(close, CloseConnection)
    # Raw frames: the client's wsproto sends nothing but the close reply in this state.
    await client.stream.send_all(frame(PING, b"late") + frame(CLOSE, (1000).to_bytes(2, "big")))
    assert await read_until_eof(client.stream) == b""  # no pong, and no error logged
    await served.done.wait()


async def test_after_our_1009_close_the_app_cannot_send_another_frame(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # RFC 6455 section 5.5.1: no data frame after a close frame. Once the server refused a
    # message with 1009, send() raises (ASGI: an OSError on a closed connection) and
    # writes nothing.
    outcome: list[object] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            outcome.append(exc)
        else:
            outcome.append("sent")

    served, client = await open_ws(nursery, app, ws_max_size=100)
    await client.send(BytesMessage(data=b"x" * 101))
    close = await client.expect_close(reply=False)
    assert close.code == 1009
    assert await read_until_eof(served.client) == b""  # nothing after our close frame
    await served.done.wait()
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)
