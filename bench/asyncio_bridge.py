"""The cost of ``--loop asyncio``: one hello ASGI app served with ``loop="trio"`` and with
``loop="asyncio"`` (the trio-asyncio bridge), side by side.

::

    python bench/asyncio_bridge.py                      # requests/s, 5 interleaved rounds
    python bench/asyncio_bridge.py --callgrind          # + instructions per request

Each turn runs ``serve(hello, Config(port=0, loop=L, access_log=False))`` and a client in
the same Trio run over loopback: one keep-alive connection, ``GET /`` one after the other,
for ``--requests`` requests; the loops take turns, trio asyncio, trio asyncio, ... and the
medians are reported with their ratio. ``--callgrind`` also counts instructions per request
under ``valgrind --tool=callgrind`` (the figure that does not move with the machine's load):
``(instructions(HIGH) - instructions(LOW)) / (HIGH - LOW)`` of two runs, so start-up cancels
out; counts include the client's, the same code for both loops. Run it from the repository
root (it puts the working directory first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

sys.path.insert(0, os.getcwd())
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/apps.py

import trio
from apps import HELLO, hello  # the same app bench/run.py serves

from trio_asgi import Config, serve

THIS: Final = Path(__file__).resolve()
LOOPS: Final = ("trio", "asyncio")
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY: Final = HELLO


async def run_requests(loop: str, count: int) -> float:
    """Serve ``count`` keep-alive requests; the seconds they took."""
    async with trio.open_nursery() as nursery:
        config = Config(port=0, loop=loop, access_log=False, lifespan="off")  # type: ignore[arg-type]
        [(host, port)] = await nursery.start(serve, hello, config)
        stream = await trio.open_tcp_stream(host, port)
        started = time.perf_counter()
        for _ in range(count):
            await stream.send_all(REQUEST)
            received = b""
            while not received.endswith(BODY):
                received += await stream.receive_some(65536)
        took = time.perf_counter() - started
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return took


def throughput(requests: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    for _ in range(rounds):
        for loop in LOOPS:
            results[loop].append(requests / trio.run(run_requests, loop, requests))
    return results


def instructions(loop: str, low: int, high: int) -> float:
    """Instructions per request under callgrind (``HIGH`` minus ``LOW`` requests)."""
    counts = []
    for count in (low, high):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            subprocess.run(
                [
                    *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                    *(sys.executable, str(THIS), "--serve", str(count), "--loop", loop),
                ],
                check=True,
                env=env,
                capture_output=True,
            )
            summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
            if summary is None:
                raise RuntimeError(f"no summary line in {out}")
            counts.append(int(summary.group(1)))
    return (counts[1] - counts[0]) / (high - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per turn")
    parser.add_argument("--rounds", type=int, default=5, help="turns each loop gets")
    parser.add_argument("--callgrind", action="store_true", help="also instructions/request")
    parser.add_argument("--counts", default="100,600", help="LOW,HIGH requests for callgrind")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the callgrind driver
    parser.add_argument("--loop", choices=LOOPS, default="trio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        trio.run(run_requests, args.loop, args.serve)
        return 0
    results = throughput(args.requests, args.rounds)
    medians = {loop: statistics.median(values) for loop, values in results.items()}
    for loop in LOOPS:
        values = ", ".join(f"{value:.0f}" for value in results[loop])
        print(f"loop={loop:8} {medians[loop]:8.0f} requests/s (median of {values})")
    print(f"asyncio / trio: {medians['asyncio'] / medians['trio']:.2f} of the requests/s")
    if args.callgrind:
        low, high = (int(n) for n in args.counts.split(","))
        per = {loop: instructions(loop, low, high) for loop in LOOPS}
        for loop in LOOPS:
            print(f"loop={loop:8} {per[loop]:10.0f} instructions/request")
        print(f"asyncio / trio: {per['asyncio'] / per['trio']:.2f}x the instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
