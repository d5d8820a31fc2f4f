"""Instructions per request under callgrind: the deterministic figure of an A/B comparison.

Throughput on a shared 2-core VM moves by 10-25% between turns; the number of instructions a
request costs does not. This script counts them with ``valgrind --tool=callgrind`` for one or
more source trees (checkouts of trio-asgi) and each parser::

    python bench/instructions.py /work/ab-base /work/main            # h11 and httptools
    python bench/instructions.py /work/main --http h11 --counts 100,600

For every tree and parser it runs this file's driver twice under callgrind, serving
``LOW`` and ``HIGH`` keep-alive ``GET /`` requests (``--counts``, default 100 and 1,500),
and reports ``(instructions(HIGH) - instructions(LOW)) / (HIGH - LOW)``: the start-up
(interpreter, imports, the first requests' warm-up) cancels out. Each driver runs with the
tree as its working directory and first on ``PYTHONPATH``, so it imports that tree's
``trio_asgi``; ``PYTHONHASHSEED=0`` and a fixed seed for Trio's scheduler (which shuffles
each batch of runnable tasks) keep two runs of one tree within about 0.05%.

Drivers (``--driver``):

- ``memory``: the tree's HTTP/1.1 connection over ``trio.testing`` memory streams, started
  as its accept loop starts one: no sockets, no kernel, nothing but the server's and Trio's
  Python. It knows the layouts in :data:`LAYOUTS` (:func:`connection_runner`); a tree with
  none of them cannot use it (add its layout there when the seam moves).
- ``socket``: the public API only, ``serve(app, Config(port=0, ...))`` and a client in the
  same Trio run over loopback TCP; it runs the socket fast path as well, and works on any
  tree that has ``serve``. Counts include the client's (the same code on both sides).
- ``auto`` (default): ``memory`` if every tree has a known layout, else ``socket`` for all,
  so that both sides of a comparison always use the same driver.

``python bench/instructions.py --serve N --http P --driver D`` is the driver itself (what
callgrind runs). Linux only; needs ``valgrind`` on the PATH.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

THIS: Final = Path(__file__).resolve()
PARSERS: Final = ("h11", "httptools")
DEFAULT_COUNTS: Final = (100, 1500)
#: The layouts the memory driver knows, newest first; see :func:`connection_runner`.
LAYOUTS: Final = ("issue-10 (_connection.open_connection)", "_h11.connection", "_http11")
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
BODY: Final = b"Hello, world!"
OK: Final = b"HTTP/1.1 200 "
RUN_TIMEOUT: Final = 900.0  # seconds one callgrind run may take (about 60 s for 1,500)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# The driver (runs under callgrind, imports the tree's trio_asgi)
# ---------------------------------------------------------------------------------------------


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """``Hello, world!`` with a ``Content-Length``, as ``bench/apps.py:hello`` sends it."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def connection_runner(app: Any, http: Any) -> tuple[str, Callable[[Any], Awaitable[None]]]:
    """The imported ``trio_asgi``'s layout and ``run(stream)``: serve HTTP/1.1 on ``stream``
    until it closes, the way the tree's accept loop does for a socket.

    Raises:
        LookupError: none of :data:`LAYOUTS` matches the tree.
    """
    from trio_asgi import Config

    config = Config(http=http, access_log=False)
    try:  # issue 10: open_connection(stream, context, settings), then handle_connection
        seam = importlib.import_module("trio_asgi._connection")
        context = importlib.import_module("trio_asgi._context").ServerContext(app=app)
        settings_class = importlib.import_module("trio_asgi._h11.settings").HTTP11Settings
        settings = settings_class.from_config(config)

        async def run_new(stream: Any) -> None:
            await seam.handle_connection(seam.open_connection(stream, context, settings))

        return LAYOUTS[0], run_new
    except (ImportError, AttributeError, TypeError):
        pass
    modules = ("trio_asgi._h11.connection", "trio_asgi._http11")
    for name, module in zip(LAYOUTS[1:], modules, strict=True):
        try:  # HTTP11Connection(stream, ServerContext(app=, config=)).run()
            connection_class = importlib.import_module(module).HTTP11Connection
            context_class = importlib.import_module("trio_asgi._context").ServerContext
            old_context = context_class(app=app, config=config)
        except (ImportError, AttributeError, TypeError):
            continue

        async def run_old(stream: Any, cls: Any = connection_class, ctx: Any = old_context) -> None:
            await cls(stream, ctx).run()

        return name, run_old
    raise LookupError("no known layout in this tree's trio_asgi; use --driver socket")


def find_layout() -> str | None:
    """The name of the imported ``trio_asgi``'s layout, or None if the driver knows none."""
    try:
        return connection_runner(hello, "h11")[0]
    except LookupError:
        return None


async def request_loop(stream: Any, count: int) -> None:
    """``count`` keep-alive ``GET /`` on ``stream``, each read to the end of its body."""
    for _ in range(count):
        await stream.send_all(REQUEST)
        got = b""
        while not got.endswith(BODY):
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError(f"the server closed the connection after {got!r}")
            got += chunk
            if len(got) >= len(OK) and not got.startswith(OK):
                raise ConnectionError(f"not a 200: {got[:200]!r}")


async def drive_memory(count: int, http: Any) -> None:
    import trio
    import trio.testing

    _, run = connection_runner(hello, http)
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, server)
        await request_loop(client, count)
        await client.aclose()


async def drive_socket(count: int, http: Any) -> None:
    import trio

    from trio_asgi import Config, serve

    config = Config(host="127.0.0.1", port=0, http=http, access_log=False, lifespan="off")
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve, hello, config)
        host, port = addresses[0]
        stream = await trio.open_tcp_stream(host, port)
        await request_loop(stream, count)
        await stream.aclose()
        nursery.cancel_scope.cancel()


def serve_requests(count: int, http: str, driver: str) -> None:
    import trio
    from trio._core import _run

    # Trio shuffles or reverses each batch of runnable tasks with its own Random, seeded from
    # the OS (0.2% of variation between runs, 0.05% left with the seed): the same schedule.
    random_source = getattr(_run, "_r", None)
    if random_source is not None:
        random_source.seed(0)
    trio.run(drive_memory if driver == "memory" else drive_socket, count, http)


# ---------------------------------------------------------------------------------------------
# The measurement
# ---------------------------------------------------------------------------------------------


def tree_env(src: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0"}


def has_layout(src: Path) -> bool:
    """True if ``src``'s ``trio_asgi`` has a layout the memory driver knows."""
    code = f"import sys; sys.path.insert(0, {str(THIS.parent)!r}); import instructions; "
    code += "sys.exit(0 if instructions.find_layout() else 1)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=src, env=tree_env(src), capture_output=True, check=False
    )
    return done.returncode == 0


def choose_driver(trees: list[Path], wanted: str) -> str:
    if wanted != "auto":
        return wanted
    return "memory" if all(has_layout(src) for src in trees) else "socket"


def count_instructions(src: Path, http: str, requests: int, driver: str) -> int:
    """Instructions callgrind counts for the driver serving ``requests`` from ``src``.

    Raises:
        RuntimeError: the run failed or valgrind printed no count.
    """
    with tempfile.TemporaryDirectory(prefix="trio-asgi-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            str(THIS),
            "--serve",
            str(requests),
            "--http",
            http,
            "--driver",
            driver,
        ]
        done = subprocess.run(
            command,
            cwd=src,
            env=tree_env(src),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"callgrind run failed in {src} ({http}, {requests}): {tail}")
    return int(match[1])


@dataclass(frozen=True)
class Count:
    src: Path
    http: str
    per_request: float
    low: int
    high: int


def measure(
    trees: list[Path],
    parsers: list[str],
    counts: tuple[int, int] = DEFAULT_COUNTS,
    driver: str = "auto",
    jobs: int = 2,
) -> tuple[str, list[Count]]:
    """Instructions per request for each tree and parser; ``jobs`` callgrind runs at once.

    Returns the driver used and one :class:`Count` per (tree, parser), in that order.
    """
    driver = choose_driver(trees, driver)
    low, high = counts
    runs = [(src, http, n) for src in trees for http in parsers for n in (low, high)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        totals = list(
            pool.map(lambda run: count_instructions(run[0], run[1], run[2], driver), runs)
        )
    results = []
    for index, (src, http) in enumerate((src, http) for src in trees for http in parsers):
        at_low, at_high = totals[2 * index], totals[2 * index + 1]
        per_request = (at_high - at_low) / (high - low)
        results.append(Count(src, http, per_request, at_low, at_high))
    return driver, results


def render(driver: str, counts: tuple[int, int], results: list[Count]) -> str:
    """A Markdown table: instructions per request, and each tree against the first."""
    low, high = counts
    first = {c.http: c.per_request for c in results if c.src == results[0].src}
    lines = [
        f"Instructions per keep-alive `GET /` (callgrind, `{driver}` driver, "
        f"({high:,} - {low:,} requests) / {high - low:,}):",
        "",
        "| tree | parser | instructions per request | vs first |",
        "| --- | --- | ---: | ---: |",
    ]
    for count in results:
        ratio = count.per_request / first[count.http] - 1
        lines.append(
            f"| `{count.src}` ({commit_of(count.src)}) | {count.http} | "
            f"{count.per_request:,.0f} | {ratio:+.2%} |"
        )
    return "\n".join(lines)


def commit_of(src: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = done.stdout.strip() or "no git"
    dirty = subprocess.run(
        ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{commit}, modified" if dirty.stdout.strip() else commit


def parse_counts(text: str) -> tuple[int, int]:
    low, high = (int(part) for part in text.split(","))
    if not 0 < low < high:
        raise argparse.ArgumentTypeError("--counts LOW,HIGH with 0 < LOW < HIGH")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, help="source trees (default: this one)")
    parser.add_argument("--http", action="append", choices=PARSERS, help="default: both")
    parser.add_argument(
        "--counts", type=parse_counts, default=DEFAULT_COUNTS, help="LOW,HIGH (default 100,1500)"
    )
    parser.add_argument("--driver", choices=("auto", "memory", "socket"), default="auto")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    parsers = args.http or list(PARSERS)
    if args.serve is not None:
        serve_requests(args.serve, parsers[0], args.driver)
        return 0
    trees = [src.resolve() for src in args.trees] or [THIS.parent.parent]
    started = time.monotonic()
    driver, results = measure(trees, parsers, args.counts, args.driver, args.jobs)
    print(render(driver, args.counts, results))
    print(f"\ninstructions: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
