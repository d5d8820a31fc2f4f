"""A connection storm: many new connections at once while keep-alive clients keep the server busy.

Run from the repository root against a server already listening on 127.0.0.1 (``bench/run.py``
does this for each server in its ``storm-256`` scenario)::

    python bench/storm.py --port 8000 --connections 256 --background 64 --storms 5

It starts ``wrk`` with ``--background`` keep-alive connections on ``GET /`` for the whole run,
waits a second, then ``--storms`` times, one second apart: opens ``--connections`` new TCP
connections at the same instant, sends one ``GET /`` on each, and times each one from the
start of its ``connect()`` to the end of its response (the response is read whole:
``Content-Length`` framing, as the bench apps answer). It prints one JSON object on stdout:
``p50_ms``, ``p99_ms`` and ``max_ms`` over every storm connection, ``answered`` and ``errors``
(a refused or reset connection, a response that is not 200 or not complete within 10 s), and
``wrk_rps``, the background load's requests per second. One trio process: 256 connects and
reads are cheap next to the server it measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from typing import Final

import trio

HOST: Final = "127.0.0.1"
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
RESPONSE_TIMEOUT: Final = 10.0  # seconds a storm connection may take to be answered


async def one_connection(port: int, latencies: list[float], errors: list[str]) -> None:
    """Connect, send one request, read the whole response; record the time it took."""
    started = time.perf_counter()
    try:
        with trio.fail_after(RESPONSE_TIMEOUT):
            stream = await trio.open_tcp_stream(HOST, port)
            async with stream:
                await stream.send_all(REQUEST)
                data = b""
                while True:
                    head_end = data.find(b"\r\n\r\n")
                    if head_end != -1:
                        head = data[:head_end].lower()
                        length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                        if len(data) >= head_end + 4 + length:
                            break
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise OSError("the server closed the connection before answering")
                    data += chunk
        status_line = data.split(b"\r\n", 1)[0]
        if not status_line.startswith(b"HTTP/1.1 200"):
            raise OSError(f"status line {status_line!r}")
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, IndexError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        return
    latencies.append(time.perf_counter() - started)


async def storms(port: int, connections: int, count: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    for _ in range(count):
        await trio.sleep(1.0)  # let the backlog of the last storm drain; wrk keeps running
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(one_connection, port, latencies, errors)
    return latencies, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=256, help="per storm")
    parser.add_argument("--background", type=int, default=64, help="wrk keep-alive connections")
    parser.add_argument("--storms", type=int, default=5)
    parser.add_argument("--wrk-core", default="", help="taskset core for wrk (default: none)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("storm.py needs wrk on the PATH (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    duration = int(args.storms * 1.5 + 3)  # whole seconds: wrk takes no fractions
    wrk = ["wrk", "-t1", f"-c{args.background}", f"-d{duration}s", f"http://{HOST}:{args.port}/"]
    if args.wrk_core:
        wrk = ["taskset", "-c", args.wrk_core, *wrk]
    with subprocess.Popen(wrk, stdout=subprocess.PIPE, text=True) as background:
        latencies, errors = trio.run(storms, args.port, args.connections, args.storms)
        output, _ = background.communicate(timeout=duration + 30)
    rps = 0.0
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
    ms = sorted(latency * 1000 for latency in latencies)
    result = {
        "p50_ms": round(statistics.median(ms), 2) if ms else 0.0,
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else 0.0,
        "max_ms": round(ms[-1], 2) if ms else 0.0,
        "answered": len(ms),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wrk_rps": rps,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
