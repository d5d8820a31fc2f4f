"""WebSocket echo load: round trips per second over N connections, for ``bench/run.py``.

Run from the repository root (any Python with trio and wsproto)::

    python bench/wsclient.py --port 8000 --connections 16 --size 32 --duration 10

Each connection does the opening handshake to ``ws://127.0.0.1:PORT/``, then loops: send one
binary message of ``--size`` bytes, wait for its echo (checked byte for byte), and record the
round trip. After ``--duration`` seconds it prints one JSON object on stdout: ``rps`` (round
trips per second, all connections together), ``p50_ms`` and ``p99_ms`` (round-trip latency),
``errors`` (connections that failed). One trio process, raw sockets, wsproto: cheap next to
the server it measures, but it is Python, so on a fast server it may be the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
)

HOST: Final = "127.0.0.1"
READ_SIZE: Final = 65536  # 64 KiB


class EchoError(Exception):
    """The server refused the handshake, closed, or echoed something else."""


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, one per round trip
    errors: list[str] = field(default_factory=list)


async def next_event(stream: trio.SocketStream, ws: WSConnection, events: list[object]) -> object:
    """The next wsproto event, reading from the socket as needed."""
    while not events:
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise EchoError("EOF")
        ws.receive_data(data)
        events.extend(ws.events())
    return events.pop(0)


FRAME_POOL: Final = 64  # pre-encoded frames, each with its own masking key, sent in turn


def echo_frame(payload: bytes) -> bytes:
    """The unmasked binary frame a server echoes ``payload`` in (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes([0x82, size]) + payload
    if size < 65536:
        return b"\x82\x7e" + size.to_bytes(2, "big") + payload
    return b"\x82\x7f" + size.to_bytes(8, "big") + payload


async def run_connection(port: int, size: int, stop: trio.Event, stats: Stats) -> None:
    """One connection's loop. The client's own cost is kept small so the server is what is
    measured: the message frames are encoded once (a pool of them, each with a fresh masking
    key, RFC 6455 section 5.3), and an echo that is byte for byte the expected frame is
    accepted without parsing; anything else goes through wsproto."""
    payload = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    try:
        stream = await trio.open_tcp_stream(HOST, port)
    except OSError as exc:
        stats.errors.append(f"connect: {exc}")
        return
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        events: list[object] = []
        sock = stream.socket
        expected = echo_frame(payload)
        try:
            await stream.send_all(ws.send(Request(host=f"{HOST}:{port}", target="/")))
            event = await next_event(stream, ws, events)
            if not isinstance(event, AcceptConnection):
                raise EchoError(f"handshake: {type(event).__name__}")
            frames = [ws.send(BytesMessage(data=payload)) for _ in range(FRAME_POOL)]
            turn = 0
            while not stop.is_set():
                started = time.perf_counter()
                await sock.send(frames[turn])
                turn = (turn + 1) % FRAME_POOL
                received = b""
                while len(received) < len(expected) and expected.startswith(received):
                    data = await sock.recv(READ_SIZE)
                    if not data:
                        raise EchoError("EOF")
                    received += data
                if received != expected:
                    await check_echo(stream, ws, events, received, payload)
                stats.latencies.append(time.perf_counter() - started)
            await stream.send_all(ws.send(CloseConnection(code=1000)))
        except (EchoError, trio.BrokenResourceError, OSError) as exc:
            stats.errors.append(str(exc))


async def check_echo(
    stream: trio.SocketStream,
    ws: WSConnection,
    events: list[object],
    received: bytes,
    payload: bytes,
) -> None:
    """The slow path: parse what arrived (a ping, a fragmented echo...) with wsproto."""
    ws.receive_data(received)
    events.extend(ws.events())
    echoed = b""
    while True:
        event = await next_event(stream, ws, events)
        if isinstance(event, BytesMessage):
            echoed += event.data
            if event.message_finished:
                break
        elif isinstance(event, (CloseConnection, RejectConnection)):
            raise EchoError(f"closed by the server: {event!r}")
    if echoed != payload:
        raise EchoError(f"echo {echoed[:40]!r}")


async def measure(port: int, connections: int, size: int, duration: float) -> dict[str, float]:
    stats = Stats()
    stop = trio.Event()
    with trio.move_on_after(duration + 10):  # a server that stops answering cannot hang us
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(run_connection, port, size, stop, stats)
            await trio.sleep(duration)
            stop.set()
    latencies = sorted(stats.latencies)
    if not latencies:
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": len(stats.errors)}
    return {
        "rps": len(latencies) / duration,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": len(stats.errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="message size in bytes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    result = trio.run(measure, args.port, args.connections, args.size, args.duration)
    print(json.dumps(result))
    return 0 if result["rps"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
