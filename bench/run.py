"""Side-by-side benchmark: trio-asgi against Hypercorn and Uvicorn, the same app, interleaved.

Run from the repository root with a Python that has trio-asgi, hypercorn[trio],
uvicorn[standard] and matplotlib (``nox -s bench`` builds one), and ``wrk`` on the PATH::

    python bench/run.py            # every scenario, 2 rounds of 10 s each
    python bench/run.py --quick    # fewer scenarios, 1 round of 2 s: under a minute

What it does (every step is bounded; ``--timeout`` bounds the whole run):

1. Starts each server as a subprocess with one worker, pinned to core 0 (``taskset -c 0``),
   access logs off, on 127.0.0.1 and a free port, serving ``bench/apps.py:app``; waits until
   it answers ``GET /``. A server that does not start is reported and skipped.
2. For each throughput scenario, runs the servers in turn, A B C D E, A B C D E (``--rounds``),
   with the load generator pinned to core 1: ``wrk --latency`` for HTTP, ``bench/wsclient.py``
   for WebSocket. Interleaving spreads drift (thermal, noisy neighbours) over every server.
3. RSS per idle connection: for each server, a fresh process, one warm-up request, ``VmRSS``;
   then 2,000 keep-alive connections each after one request, all left open; ``VmRSS`` again;
   the difference over 2,000. The RSS of a server is that of its process and its children,
   summed: Hypercorn's ``-w 1`` serves from a child of the process it starts.
4. Takes the median of each figure over the rounds, prints a Markdown table, writes it into
   ``docs/performance.md`` between the markers and a bar chart into ``docs/performance.png``.

Every subprocess is killed at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
DOC: Final = REPO_ROOT / "docs" / "performance.md"
CHART: Final = REPO_ROOT / "docs" / "performance.png"
START_MARKER: Final = "<!-- bench:start -->"
END_MARKER: Final = "<!-- bench:end -->"
HOST: Final = "127.0.0.1"
APP: Final = "apps:app"
SERVER_CORE: Final = "0"
CLIENT_CORE: Final = "1"
STARTUP_TIMEOUT: Final = 20.0  # seconds for a server to answer its first request
KEEP_ALIVE: Final = "300"  # seconds; idle connections must outlive the RSS scenario
BASELINE: Final = "trio-asgi"
POST_BODY_SIZE: Final = 16 * 1024  # 16 KiB


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def trio_asgi_command(port: int) -> list[str]:
    """trio-asgi's command line without ``--http`` and the app: no access log, long keep-alive.

    ``python -m trio_asgi`` imports the ``trio_asgi`` found first on ``sys.path``, which starts
    with the working directory: run it with ``cwd`` = the source tree to serve (see
    :func:`start_server`).
    """
    return [
        sys.executable,
        "-m",
        "trio_asgi",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--keep-alive-timeout",
        KEEP_ALIVE,
        "--app-dir",
        str(BENCH_DIR),
    ]


def server_commands(port: int) -> dict[str, list[str]]:
    """Each server's command line: one worker, no access log, a long keep-alive timeout."""
    python = sys.executable
    bind = f"{HOST}:{port}"
    hypercorn = [python, "-m", "hypercorn", "-w", "1", "-b", bind, "--keep-alive", KEEP_ALIVE]
    uvicorn = [
        python,
        "-m",
        "uvicorn",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--timeout-keep-alive",
        KEEP_ALIVE,
        "--app-dir",
        str(BENCH_DIR),
    ]
    trio_asgi = trio_asgi_command(port)
    return {
        "trio-asgi": [*trio_asgi, "--http", "h11", APP],
        "trio-asgi-httptools": [*trio_asgi, "--http", "httptools", APP],
        "hypercorn-trio": [*hypercorn, "-k", "trio", APP],
        "hypercorn-asyncio": [*hypercorn, "-k", "asyncio", APP],
        "uvicorn-h11": [*uvicorn, "--http", "h11", "--loop", "asyncio", "--ws", "wsproto", APP],
        "uvicorn-httptools": [
            *uvicorn,
            *("--http", "httptools", "--loop", "uvloop", "--ws", "websockets"),
            APP,
        ],
    }


SERVERS: Final = list(server_commands(0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, timeout: float = 2.0) -> bool:
    """One ``GET /`` on a connection of its own; True on a ``200``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


def start_server(
    name: str,
    logs: Path,
    command: Callable[[int], list[str]] | None = None,
    src: Path = REPO_ROOT,
) -> tuple[Server | None, str]:
    """Start ``name`` pinned to the server core; wait until it answers. (None, why) if not.

    ``command(port)`` gives its command line (default: ``name``'s in :func:`server_commands`);
    it runs with ``src`` as its working directory and first on ``PYTHONPATH`` (after
    ``bench/``), so ``python -m trio_asgi`` serves the ``trio_asgi`` of the ``src`` tree.
    Its output goes to ``logs/NAME.log``.
    """
    port = free_port()
    line = command(port) if command else server_commands(port)[name]
    command_line = ["taskset", "-c", SERVER_CORE, *line]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(BENCH_DIR), str(src), os.environ.get("PYTHONPATH")])
        ),
    }
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command_line,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=src,
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None, f"exited with {process.returncode}: {server.log_tail()}"
        if http_get(port, timeout=0.5):
            return server, ""
        time.sleep(0.1)
    server.stop()
    return None, f"did not answer within {STARTUP_TIMEOUT:.0f} s: {server.log_tail()}"


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Hypercorn's ``-w 1`` serves from a child)."""
    found = [pid]
    for parent in found:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def rss_kib(pid: int) -> int:
    """``VmRSS`` in KiB of ``pid`` and its descendants, summed (Linux ``/proc``)."""
    total = 0
    for process in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def raise_fd_limit(needed: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to ``needed`` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            needed = hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: str  # "wrk", "ws", or "storm" (bench/storm.py)
    connections: int
    path: str = "/"
    close: bool = False  # a new connection per request
    post: bool = False


SCENARIOS: Final = [
    Scenario("hello-1", "hello, 1 keep-alive connection", "wrk", 1),
    Scenario("hello-64", "hello, 64 keep-alive connections", "wrk", 64),
    Scenario("hello-256", "hello, 256 keep-alive connections", "wrk", 256),
    Scenario("close-64", "hello, new connection per request, 64", "wrk", 64, close=True),
    Scenario("post-64", "POST echo 16 KiB, 64 connections", "wrk", 64, path="/echo", post=True),
    Scenario("stream-16", "1 MiB streamed download, 16 connections", "wrk", 16, path="/stream"),
    Scenario("ws-16", "WebSocket echo 32 B, 16 connections", "ws", 16),
    # req/s: the 64 background keep-alive connections'; latency: the storm connections'
    # first responses, connect included.
    Scenario("storm-256", "storm: 256 new connections at once, 64 busy ones", "storm", 256),
]
QUICK: Final = ["hello-64", "post-64", "ws-16"]


@dataclass
class Sample:
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0


_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Sample:
    """Requests/sec, the 50% and 99% latencies and the error count from ``wrk --latency``."""
    sample = Sample()
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        sample.rps = float(match[1])
    if match := re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE):
        sample.p50_ms = _ms(match[1])
    if match := re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE):
        sample.p99_ms = _ms(match[1])
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        sample.errors += int(match[1])
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        # with Connection: close, wrk counts every server-side close as a read error
        sample.errors += int(match[1]) + int(match[3]) + int(match[4])
    return sample


def run_load(
    scenario: Scenario, server: Server, duration: float, lua: Path, scheme: str = "http"
) -> Sample:
    """One turn of ``scenario`` against ``server``; ``scheme`` is ``https`` for a TLS server
    (``wrk`` only; ``bench/tls.py``)."""
    pin = ["taskset", "-c", CLIENT_CORE]
    if scenario.kind == "storm":
        command = [
            *pin,
            sys.executable,
            str(BENCH_DIR / "storm.py"),
            "--port",
            str(server.port),
            "--connections",
            str(scenario.connections),
            "--background",
            "64",
            "--storms",
            str(max(1, round(duration / 2))),
        ]
    elif scenario.kind == "ws":
        command = [
            *pin,
            sys.executable,
            str(BENCH_DIR / "wsclient.py"),
            "--port",
            str(server.port),
            "--connections",
            str(scenario.connections),
            "--size",
            "32",
            "--duration",
            str(duration),
        ]
    else:
        command = [
            *pin,
            "wrk",
            "-t1",
            f"-c{scenario.connections}",
            f"-d{duration:g}s",
            "--timeout",
            "5s",
            "--latency",
        ]
        if scenario.close:
            command += ["-H", "Connection: close"]
        if scenario.post:
            command += ["-s", str(lua)]
        command.append(f"{scheme}://{HOST}:{server.port}{scenario.path}")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return Sample(errors=-1)
    if scenario.kind in ("ws", "storm"):
        try:
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return Sample(errors=-1)
        rps = result["rps"] if scenario.kind == "ws" else result["wrk_rps"]
        return Sample(rps, result["p50_ms"], result["p99_ms"], int(result["errors"]))
    return parse_wrk(done.stdout)


def supports_ws(server: Server) -> bool:
    """True if ``server`` accepts a WebSocket handshake on ``/``."""
    request = (
        f"GET / HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((HOST, server.port), timeout=2) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(b"HTTP/1.1 101")
    except OSError:
        return False


def measure_rss(server: Server, connections: int, settle: float) -> tuple[float, str]:
    """KiB of RSS per idle keep-alive connection, and a note (empty if all went well)."""
    http_get(server.port)
    time.sleep(settle)
    before = rss_kib(server.pid)
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    sockets: list[socket.socket] = []
    failed = 0
    try:
        for _ in range(connections):
            try:
                sock = socket.create_connection((HOST, server.port), timeout=5)
            except OSError:
                failed += 1
                continue
            sockets.append(sock)
            try:
                sock.sendall(request)
                if not sock.recv(4096).startswith(b"HTTP/1.1 200"):
                    failed += 1
            except OSError:
                failed += 1
        time.sleep(settle)
        after = rss_kib(server.pid)
    finally:
        for sock in sockets:
            sock.close()
    note = f"{failed} of {connections} connections failed" if failed else ""
    return (after - before) / connections, note


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class Results:
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # server -> why
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False

    def median(self, scenario: str, server: str) -> Sample | None:
        runs = [s for s in self.samples.get(scenario, {}).get(server, []) if s.rps > 0]
        if not runs:
            return None
        return Sample(
            statistics.median(s.rps for s in runs),
            statistics.median(s.p50_ms for s in runs),
            statistics.median(s.p99_ms for s in runs),
            sum(s.errors for s in runs),
        )


@contextlib.contextmanager
def servers_running(names: list[str], logs: Path, results: Results) -> Iterator[list[Server]]:
    running: list[Server] = []
    try:
        for name in names:
            server, why = start_server(name, logs)
            if server is None:
                results.skipped[name] = why
                print(f"bench: {name} skipped: {why}", file=sys.stderr)
            else:
                running.append(server)
        yield running
    finally:
        for server in running:
            server.stop()


def write_post_lua(directory: Path) -> Path:
    """Write wrk's script for the POST scenarios (a 16 KiB body) into ``directory``."""
    lua = directory / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = string.rep("x", {POST_BODY_SIZE})\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
    )
    return lua


def run(args: argparse.Namespace, results: Results, logs: Path) -> None:
    deadline = time.monotonic() + args.timeout
    scenarios = [s for s in SCENARIOS if s.key in args.scenarios]
    lua = write_post_lua(logs)
    with servers_running(args.servers, logs, results) as running:
        ws_ok = {server.name: supports_ws(server) for server in running}
        for scenario in scenarios:
            per_server = results.samples.setdefault(scenario.key, {})
            for number in range(1, args.rounds + 1):
                for server in running:
                    if scenario.kind == "ws" and not ws_ok[server.name]:
                        continue
                    if time.monotonic() + args.duration > deadline:
                        results.timed_out = True
                        return
                    if server.process.poll() is not None:
                        continue
                    sample = run_load(scenario, server, args.duration, lua)
                    per_server.setdefault(server.name, []).append(sample)
                    if sample.rps <= 0:
                        results.notes.append(
                            f"{scenario.key}, round {number}, {server.name}: no result "
                            "(the load generator failed or timed out); left out of the median"
                        )
                    print(
                        f"bench: {scenario.key} round {number} {server.name}: "
                        f"{sample.rps:,.0f} req/s, p50 {sample.p50_ms:.2f} ms, "
                        f"p99 {sample.p99_ms:.2f} ms, errors {sample.errors}",
                        file=sys.stderr,
                    )
        for server in running:
            if server.process.poll() is not None:
                results.notes.append(f"{server.name} exited during the run: {server.log_tail()}")
    if args.rss_connections and "rss" in args.scenarios:
        for name in args.servers:
            if name in results.skipped or time.monotonic() + 30 > deadline:
                continue
            with servers_running([name], logs, results) as fresh:
                for server in fresh:
                    kib, note = measure_rss(server, args.rss_connections, args.settle)
                    results.rss[name] = kib
                    if note:
                        results.notes.append(f"RSS, {name}: {note}")
                    print(f"bench: rss {name}: {kib:.1f} KiB per connection", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One of issue 5's targets: a ratio (or a size) measured in this run, and its bound."""

    text: str
    scenario: str  # a scenario key, or "rss"
    server: str
    peer: str  # "" for an absolute bound (RSS in KiB)
    metric: str  # "rps": server/peer >= bound; "p99": server/peer <= bound; "rss": KiB <= bound
    bound: float


TARGETS: Final = [
    Target(
        "h11: hello/64 req/s vs Hypercorn-trio", "hello-64", BASELINE, "hypercorn-trio", "rps", 4.0
    ),
    Target("h11: hello/64 req/s vs uvicorn h11", "hello-64", BASELINE, "uvicorn-h11", "rps", 1.2),
    Target(
        "h11: new connection per request vs uvicorn h11",
        "close-64",
        BASELINE,
        "uvicorn-h11",
        "rps",
        1.0,
    ),
    Target(
        "h11: hello/64 p99 latency vs uvicorn h11 (lower is better)",
        "hello-64",
        BASELINE,
        "uvicorn-h11",
        "p99",
        1.0,
    ),
    Target(
        "h11: connection storm p99 vs uvicorn h11 (lower is better)",
        "storm-256",
        BASELINE,
        "uvicorn-h11",
        "p99",
        1.5,
    ),
    Target(
        "h11: hello/256 p99 latency vs uvicorn h11 (lower is better)",
        "hello-256",
        BASELINE,
        "uvicorn-h11",
        "p99",
        1.5,
    ),
    Target("WebSocket echo vs Hypercorn-trio", "ws-16", BASELINE, "hypercorn-trio", "rps", 2.0),
    Target("WebSocket echo vs uvicorn with wsproto", "ws-16", BASELINE, "uvicorn-h11", "rps", 1.0),
    Target(
        "httptools: hello/64 vs uvicorn httptools+uvloop",
        "hello-64",
        "trio-asgi-httptools",
        "uvicorn-httptools",
        "rps",
        0.7,
    ),
    Target("KiB per idle keep-alive connection", "rss", BASELINE, "", "rss", 8.0),
]


def render_targets(results: Results) -> list[str]:
    """The targets table: each measured value against its bound, met or not."""
    rows: list[str] = []
    for target in TARGETS:
        if target.metric == "rss":
            kib = results.rss.get(target.server)
            if kib is None:
                continue
            value, bound, met = (
                f"{kib:.1f} KiB",
                f"at most {target.bound:g} KiB",
                kib <= target.bound,
            )
        else:
            mine = results.median(target.scenario, target.server)
            theirs = results.median(target.scenario, target.peer)
            if mine is None or theirs is None:
                continue
            if target.metric == "p99":
                ratio = mine.p99_ms / theirs.p99_ms if theirs.p99_ms else float("inf")
                value = f"{ratio:.2f}x ({mine.p99_ms:.2f} / {theirs.p99_ms:.2f} ms)"
                bound, met = f"at most {target.bound:g}x", ratio <= target.bound
            else:
                ratio = mine.rps / theirs.rps
                value = f"{ratio:.2f}x ({mine.rps:,.0f} / {theirs.rps:,.0f})"
                bound, met = f"at least {target.bound:g}x", ratio >= target.bound
        rows.append(f"| {target.text} | {value} | {bound} | {'met' if met else 'not met'} |")
    if not rows:
        return []
    return [
        "",
        "The performance targets (issues 5 and 10), from this run "
        "(ratios are trio-asgi's figure over the peer's):",
        "",
        "| target | measured | bound | |",
        "| --- | ---: | ---: | --- |",
        *rows,
    ]


def render(args: argparse.Namespace, results: Results) -> str:
    lines = [
        f"Run: `python bench/run.py{' ' + ' '.join(args.argv) if args.argv else ''}` on "
        f"{time.strftime('%Y-%m-%d')}; {machine()}; {args.rounds} round(s) of "
        f"{args.duration:g} s per server and scenario; medians over the rounds.",
    ]
    if any(results.samples.values()):
        lines += [
            "",
            "| scenario | server | req/s | p50 ms | p99 ms | req/s vs trio-asgi | errors |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
    for scenario in SCENARIOS:
        if scenario.key not in results.samples:
            continue
        base = results.median(scenario.key, BASELINE)
        for name in args.servers:
            sample = results.median(scenario.key, name)
            if sample is None:
                continue
            ratio = f"{sample.rps / base.rps:.2f}x" if base else "n/a"
            lines.append(
                f"| {scenario.title} | {name} | {sample.rps:,.0f} | {sample.p50_ms:.2f} | "
                f"{sample.p99_ms:.2f} | {ratio} | {sample.errors} |"
            )
    if results.rss:
        lines += [
            "",
            f"RSS per idle keep-alive connection, {args.rss_connections:,} open "
            "(fresh server, one request on each connection):",
            "",
            "| server | KiB per connection | vs trio-asgi |",
            "| --- | ---: | ---: |",
        ]
        base_rss = results.rss.get(BASELINE)
        for name, kib in results.rss.items():
            ratio = f"{kib / base_rss:.2f}x" if base_rss else "n/a"
            lines.append(f"| {name} | {kib:.1f} | {ratio} |")
    lines += render_targets(results)
    extra = [f"- {name} skipped: {why}" for name, why in results.skipped.items()]
    extra += [f"- {note}" for note in results.notes]
    if results.timed_out:
        extra.append(f"- stopped at the --timeout of {args.timeout:g} s; some runs are missing")
    if extra:
        lines += ["", "Notes:", "", *extra]
    return "\n".join(lines)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model or platform.machine()}), "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


INTRO: Final = """\
# Performance

`bench/run.py` measures trio-asgi side by side with Hypercorn (trio and asyncio workers) and
Uvicorn (h11 on asyncio, httptools on uvloop), all serving the same app, `bench/apps.py:app`.
Run it with `nox -s bench` (or `nox -s bench -- --quick` for a one-minute smoke run).

## Method

- Each server runs as one process with one worker, pinned to CPU core 0 (`taskset -c 0`),
  access logs off, on 127.0.0.1. The load generator is pinned to core 1: `wrk --latency`
  (one thread) for HTTP, `bench/wsclient.py` for WebSocket (trio; it encodes its frames once
  and compares each echo as bytes, so that its own cost stays small next to the server's).
- Scenarios: `GET /` (`Hello, world!`) over 1, 64 and 256 keep-alive connections; a new
  connection per request (`Connection: close`, 64 connections); `POST /echo` of a 16 KiB body
  (64 connections); a 1 MiB download streamed in 64 KiB chunks (16 connections); WebSocket
  echo of 32-byte messages over 16 connections (round trips per second); RSS per idle
  keep-alive connection, from `VmRSS` before and after opening 2,000 connections that each
  made one request, on a fresh server process (the server's process and its children, summed:
  Hypercorn with `-w 1` serves from a child process).
- Servers: trio-asgi with `--http h11` (the baseline of every ratio) and with
  `--http httptools`; Hypercorn with its trio and its asyncio worker; Uvicorn with h11 on
  asyncio and with httptools on uvloop.
- The servers take turns, A B C D E F, A B C D E F, for each scenario, so that drift over the
  run hits them all alike; the table shows the median over the rounds, and the targets of
  issue 5 computed from the same medians.

## Reading the numbers

Absolute numbers drift from run to run and machine to machine (CPU frequency, noisy
neighbours on a shared host, kernel version); only the ratios measured in the same run mean
anything. The WebSocket client is Python: cheap, but on the fastest servers it may still be
the bottleneck.
The machine of the last run is named above its table; the runs recorded here were made on a
2-core cloud VM (AMD EPYC, shared host), server on one core and load generator on the other,
so a server never competes with its client for CPU but the host's neighbours may.

WebSocket stacks differ: trio-asgi, Hypercorn and `uvicorn-h11` (`--ws wsproto`) use
wsproto; `uvicorn-httptools` uses the `websockets` library (`--ws websockets`).

## Last run

"""


def write_doc(table: str) -> None:
    block = f"{START_MARKER}\n\n{table}\n\n![req/s per scenario](performance.png)\n\n{END_MARKER}"
    text = DOC.read_text() if DOC.exists() else f"{INTRO}{START_MARKER}\n{END_MARKER}\n"
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        text = f"{text.rstrip()}\n\n{START_MARKER}\n{END_MARKER}\n"
        start, end = text.find(START_MARKER), text.find(END_MARKER)
    DOC.write_text(text[:start] + block + text[end + len(END_MARKER) :])


def write_chart(args: argparse.Namespace, results: Results) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no chart", file=sys.stderr)
        return False
    panels = [s for s in SCENARIOS if results.samples.get(s.key)]
    if not panels:
        return False
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for axis, scenario in zip(axes.flat, panels, strict=False):
        medians = {n: results.median(scenario.key, n) for n in args.servers}
        names = [n for n, sample in medians.items() if sample is not None]
        values = [sample.rps for sample in medians.values() if sample is not None]
        axis.bar(
            range(len(names)),
            values,
            color=[colours[args.servers.index(n) % len(colours)] for n in names],
        )
        axis.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        axis.set_title(scenario.title, fontsize=9)
        axis.set_ylabel("req/s" if scenario.kind == "wrk" else "round trips/s", fontsize=8)
        axis.tick_params(axis="y", labelsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"Median req/s, one worker on one core ({machine()})", fontsize=10)
    figure.tight_layout()
    figure.savefig(CHART, dpi=100)
    plt.close(figure)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"1 round of 2 s, scenarios {', '.join(QUICK)} and rss with 500 connections",
    )
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default: 2)")
    parser.add_argument("--duration", type=float, help="seconds per run (default: 10)")
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated, from {', '.join(s.key for s in SCENARIOS)}, rss (default: all)",
    )
    parser.add_argument(
        "--servers", help=f"comma-separated, from {', '.join(SERVERS)} (default: all)"
    )
    parser.add_argument(
        "--rss-connections", type=int, help="idle connections for the RSS scenario (default 2000)"
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds before an RSS reading (default: 1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="bound on the whole run in seconds"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.rss_connections = args.rss_connections or (500 if args.quick else 2000)
    keys = [s.key for s in SCENARIOS] + ["rss"]
    default = [*QUICK, "rss"] if args.quick else keys
    args.scenarios = args.scenarios.split(",") if args.scenarios else default
    args.servers = args.servers.split(",") if args.servers else SERVERS
    check_selection(parser, args, keys, SERVERS)
    return args


def check_selection(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    scenarios: list[str],
    servers: list[str],
) -> None:
    """Exit with a usage error for an unknown scenario or server, or bad rounds/duration
    (shared with bench/tls.py)."""
    if unknown := set(args.scenarios) - set(scenarios):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if unknown := set(args.servers) - set(servers):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration positive")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"bench: needs {' and '.join(missing)} on the PATH", file=sys.stderr)
        return 2
    raise_fd_limit(args.rss_connections + 1024)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="trio-asgi-bench-") as logs:
        run(args, results, Path(logs))
    table = render(args, results)
    print(table)
    if not args.no_write:
        write_doc(table)
        wrote = write_chart(args, results)
        print(f"\nbench: wrote {DOC}" + (f" and {CHART}" if wrote else ""), file=sys.stderr)
    measured = any(results.samples.values()) or results.rss
    return 0 if measured and not results.timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
