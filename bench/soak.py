"""Soak test: thousands of keep-alive connections, a hundred thousand requests, and the server's
memory before, during and after them.

Run from the repository root (any Python with trio and trio-asgi's dependencies)::

    python bench/soak.py                                   # 2,000 connections, 100,000 requests
    python bench/soak.py --connections 500 --requests 20000
    python bench/soak.py --rounds 3                        # the same, three times over

What it does, in order (every step is bounded; ``--timeout`` bounds the whole run):

1. Raises this process's ``RLIMIT_NOFILE`` soft limit to what the connections need; the server
   subprocess inherits it.
2. Starts ``python -m trio_asgi --port 0 --no-access-log --keep-alive-timeout 300 --app-dir
   bench --http HTTP apps:hello`` (``--http`` as given, default ``auto``) and reads the port
   from its "Listening on" line on stderr. The long
   keep-alive timeout keeps idle connections open for step 5.
3. Sends one warm-up request on a connection of its own and closes it, then reads the server's
   RSS (``VmRSS`` in ``/proc/PID/status``): "start". From here on a sampler reads the RSS
   every 0.5 s; the largest sample is "peak".
4. Opens ``--connections`` connections to 127.0.0.1 at once; once all are open, each loops
   ``GET /`` on its keep-alive connection until ``--requests`` requests have been sent in
   total. A request counts as failed unless it gets a complete ``200`` response whose body is
   ``Hello, world!``; a connection that fails is replaced by a new one.
5. Leaves all connections open and idle for ``--settle`` seconds: "idle".
6. Closes every connection, waits until the server's open file descriptors are back to what
   they were at step 3, lets it settle ``--settle`` seconds: "after".
7. With ``--rounds N``, repeats steps 4 to 6 N times in all. A leak grows "after" round by
   round; memory the allocator keeps for reuse (CPython's arenas, the C heap) does not.
8. Sends the server SIGTERM and waits for it to exit.

It prints a Markdown table and exits 0 if no request failed, the last "after" is within
``--tolerance`` (default 10%) of the baseline, and the server exited 0; otherwise 1. The
baseline is round 1's "after" when there are two or more rounds (the default is 2): CPython's
allocator keeps freed memory in its pools for reuse, so a server never gives back to the OS
what a first burst of 2,000 connections took, and comparing with the cold "start" would call
that a leak. A leak is memory that grows round after round, which this catches. With
``--rounds 1`` the baseline is "start".

The load generator is a single trio process writing raw HTTP/1.1 and parsing responses with a
strict minimal parser (status line, ``Content-Length``, exact body, nothing extra), so it stays
cheap next to the server it measures.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
HOST: Final = "127.0.0.1"
LISTENING: Final = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
EXPECTED_BODY: Final = b"Hello, world!"
SAMPLE_INTERVAL: Final = 0.5  # seconds between RSS samples
STARTUP_TIMEOUT: Final = 15.0  # seconds for the server to listen
EXIT_TIMEOUT: Final = 15.0  # seconds for the server to exit after SIGTERM
READ_SIZE: Final = 65536  # bytes


class ResponseError(Exception):
    """The server's answer was not a complete ``200 Hello, world!``."""


# ---------------------------------------------------------------------------------------------
# The server subprocess
# ---------------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid``, in KiB (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Server:
    process: trio.Process
    port: int = 0
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read_stderr(self, listening: trio.Event) -> None:
        """Collect the server's stderr lines; set ``listening`` once the port is known."""
        assert self.process.stderr is not None
        pending = b""
        async for chunk in self.process.stderr:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                self.stderr_lines.append(line)
                del self.stderr_lines[:-200]  # the last lines are enough to diagnose
                match = LISTENING.search(line)
                if match and not listening.is_set():
                    self.port = int(match[1])
                    listening.set()
        listening.set()  # EOF: the server exited; port 0 says it never listened


def server_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trio_asgi",
        "--host",
        HOST,
        "--port",
        "0",
        "--no-access-log",
        "--keep-alive-timeout",
        "300",
        "--app-dir",
        str(BENCH_DIR),
        "--http",
        args.http,
        args.app,
    ]


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to ``needed`` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(
                f"soak: needs {needed} file descriptors, but the hard RLIMIT_NOFILE is {hard}; "
                "use fewer --connections or raise the hard limit (ulimit -Hn)"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---------------------------------------------------------------------------------------------
# The load generator
# ---------------------------------------------------------------------------------------------


async def connect(port: int) -> trio.SocketStream:
    """A TCP connection to the server (no resolver: the address is a literal)."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def exchange(stream: trio.SocketStream, buffer: bytearray) -> bool:
    """Send one ``GET /`` and read its response; True if the server said ``Connection: close``.

    Raises:
        ResponseError: the response is not a complete ``200`` with the expected body, or the
            server closed the connection before it was.
        trio.BrokenResourceError: the connection was reset.
    """
    await stream.send_all(REQUEST)
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = await stream.receive_some(READ_SIZE)
        if not chunk:
            raise ResponseError("EOF before a whole response head" if buffer else "EOF")
        buffer += chunk
    status_line, *header_lines = bytes(buffer[:end]).split(b"\r\n")
    del buffer[: end + 4]
    if not status_line.startswith(b"HTTP/1.1 200 "):
        raise ResponseError(f"status line {status_line[:40]!r}")
    length = None
    closing = False
    for line in header_lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closing = b"close" in value.lower()
        elif name == b"transfer-encoding":
            raise ResponseError("Transfer-Encoding on a response with a known length")
    if length is None:
        raise ResponseError("no Content-Length")
    while len(buffer) < length:
        chunk = await stream.receive_some(READ_SIZE)
        if not chunk:
            raise ResponseError("EOF in the body")
        buffer += chunk
    if bytes(buffer[:length]) != EXPECTED_BODY:
        raise ResponseError(f"body {bytes(buffer[:length])[:40]!r}")
    if len(buffer) > length:
        raise ResponseError(f"{len(buffer) - length} bytes after the response")
    buffer.clear()
    return closing


@dataclass
class Load:
    """Shared state of the load generator's connection tasks."""

    connections: int
    remaining: int  # requests not yet sent
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    connect_failures: int = 0
    closed_by_server: int = 0  # responses that said Connection: close
    opened: int = 0  # connections that were open when the load began
    open_now: int = 0
    workers_done: int = 0
    all_open: trio.Event = field(default_factory=trio.Event)
    all_done: trio.Event = field(default_factory=trio.Event)
    close_all: trio.Event = field(default_factory=trio.Event)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def _initial_connection_settled(self) -> None:
        if self.opened + self.connect_failures == self.connections:
            self.started_at = time.perf_counter()
            self.all_open.set()

    def _worker_finished(self) -> None:
        self.workers_done += 1
        if self.workers_done == self.connections:
            self.finished_at = time.perf_counter()
            self.all_done.set()

    async def _open(self, port: int) -> trio.SocketStream | None:
        try:
            stream = await connect(port)
        except OSError as exc:
            self.failures[f"connect: {exc.strerror or exc}"] += 1
            return None
        self.open_now += 1
        return stream

    async def _close(self, stream: trio.SocketStream) -> None:
        self.open_now -= 1
        await trio.aclose_forcefully(stream)

    async def run_connection(self, port: int) -> None:
        stream = await self._open(port)
        if stream is None:
            self.connect_failures += 1
        else:
            self.opened += 1
        self._initial_connection_settled()
        await self.all_open.wait()  # every connection is open before the first request
        buffer = bytearray()
        try:
            while self.remaining > 0 and stream is not None:
                self.remaining -= 1
                try:
                    closing = await exchange(stream, buffer)
                except ResponseError as exc:
                    self.failures[str(exc)] += 1
                    closing = True
                except trio.BrokenResourceError as exc:
                    cause = exc.__cause__
                    self.failures[f"reset: {getattr(cause, 'strerror', None) or cause}"] += 1
                    closing = True
                else:
                    self.ok += 1
                    self.closed_by_server += closing
                if closing:  # replace the connection, as a client would
                    await self._close(stream)
                    buffer.clear()
                    stream = await self._open(port)
            self._worker_finished()
            await self.close_all.wait()  # idle on the open keep-alive connection
        finally:
            if stream is not None:
                await self._close(stream)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class Round:
    """One pass of load, idle and close (steps 4 to 6)."""

    load: Load
    rss_idle: int = 0
    fds_idle: int = 0
    rss_after: int = 0
    fds_after: int = 0
    drained: trio.Event = field(default_factory=trio.Event)


@dataclass
class Report:
    connections: int
    requests: int  # per round
    fd_limit: int = 0
    rounds: list[Round] = field(default_factory=list)
    rss_start: int = 0
    rss_peak: int = 0
    fds_start: int = 0
    server_exit: int | None = None
    timed_out: bool = False
    server_failed: str = ""
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def rss_after(self) -> int:
        return self.rounds[-1].rss_after if self.rounds else 0

    @property
    def failed(self) -> int:
        return sum(r.load.failed for r in self.rounds)

    @property
    def ok(self) -> int:
        return sum(r.load.ok for r in self.rounds)

    @property
    def rss_baseline(self) -> int:
        """Round 1's "after" (warmed up) with two or more rounds, else the cold start."""
        return self.rounds[0].rss_after if len(self.rounds) > 1 else self.rss_start

    def memory_returned(self, tolerance: float) -> bool:
        return bool(self.rss_baseline and self.rss_after) and (
            self.rss_after <= self.rss_baseline * (1 + tolerance)
        )

    def passed(self, tolerance: float, rounds: int) -> bool:
        return (
            not self.timed_out
            and not self.server_failed
            and self.failed == 0
            and self.ok == self.requests * rounds
            and self.memory_returned(tolerance)
            and self.server_exit == 0
        )


async def sample_memory(server: Server, report: Report) -> None:
    """Every SAMPLE_INTERVAL seconds: track the peak RSS, and set the current round's
    ``drained`` once its connections are closed and the server's descriptors are back to where
    they started. Every 5 s, a progress line on stderr."""
    next_progress = trio.current_time() + 5
    while True:
        report.rss_peak = max(report.rss_peak, rss_kib(server.pid))
        current = report.rounds[-1]
        load = current.load
        if load.close_all.is_set() and open_fds(server.pid) <= report.fds_start:
            current.drained.set()
        if trio.current_time() >= next_progress:
            next_progress += 5
            print(
                f"soak: round {len(report.rounds)}: {load.ok + load.failed:,}/{report.requests:,} "
                f"requests, {load.open_now:,} connections open, "
                f"RSS {report.rss_peak / 1024:.1f} MiB peak",
                file=sys.stderr,
            )
        await trio.sleep(SAMPLE_INTERVAL)


async def soak(args: argparse.Namespace, report: Report) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await trio.lowlevel.open_process(
        server_command(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    server = Server(process)
    try:
        async with trio.open_nursery() as nursery:
            listening = trio.Event()
            nursery.start_soon(server.read_stderr, listening)
            try:  # errors are recorded here, so they do not leave the nursery in a group
                with trio.fail_after(STARTUP_TIMEOUT):
                    await listening.wait()
                if not server.port:
                    report.server_failed = "the server exited before it listened"
                else:
                    await run_phases(args, server, report)
            except trio.TooSlowError:
                report.timed_out = True
            nursery.cancel_scope.cancel()  # the stderr reader
    finally:
        report.stderr_tail = server.stderr_lines[-20:]
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            if process.stderr is not None:
                await process.stderr.aclose()


async def run_phases(args: argparse.Namespace, server: Server, report: Report) -> None:
    pid = server.pid
    warm_up = await connect(server.port)
    async with warm_up:
        await exchange(warm_up, bytearray())
    report.rss_start = report.rss_peak = rss_kib(pid)
    report.fds_start = open_fds(pid)

    async with trio.open_nursery() as nursery:
        for number in range(1, args.rounds + 1):
            current = Round(Load(connections=args.connections, remaining=args.requests))
            report.rounds.append(current)
            if number == 1:
                nursery.start_soon(sample_memory, server, report)
            await run_round(args, server, current, number)
        nursery.cancel_scope.cancel()  # the sampler

    server.process.send_signal(signal.SIGTERM)
    with trio.fail_after(EXIT_TIMEOUT):
        report.server_exit = await server.process.wait()


async def run_round(args: argparse.Namespace, server: Server, current: Round, number: int) -> None:
    pid = server.pid
    load = current.load
    async with trio.open_nursery() as clients:
        for _ in range(args.connections):
            clients.start_soon(load.run_connection, server.port)
        await load.all_done.wait()
        print(
            f"soak: round {number}: load done; {load.open_now:,} connections open and idle",
            file=sys.stderr,
        )
        await trio.sleep(args.settle)
        current.rss_idle = rss_kib(pid)
        current.fds_idle = open_fds(pid)
        load.close_all.set()
    # Every connection is closed on our side; wait for the server to close its ends too.
    await current.drained.wait()
    await trio.sleep(args.settle)
    current.rss_after = rss_kib(pid)
    current.fds_after = open_fds(pid)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def render(report: Report, tolerance: float) -> str:
    rows: list[tuple[str, str]] = [
        ("server RSS at start", f"{mib(report.rss_start)} ({report.fds_start} fds)"),
    ]
    many = len(report.rounds) > 1
    for number, current in enumerate(report.rounds, 1):
        load = current.load
        tag = f"round {number}: " if many else ""
        end = load.finished_at or time.perf_counter()
        duration = end - (load.started_at or end)
        rate = f" ({(load.ok + load.failed) / duration:,.0f} req/s)" if duration > 0 else ""
        rows += [
            (f"{tag}connections", f"{report.connections:,} ({load.opened:,} open at once)"),
            (f"{tag}requests", f"{report.requests:,} ({load.ok:,} ok)"),
            (f"{tag}failed requests", f"{load.failed:,}"),
            (f"{tag}load time", f"{duration:.1f} s{rate}"),
        ]
        if load.closed_by_server:
            rows.append((f"{tag}responses with Connection: close", f"{load.closed_by_server:,}"))
        rows += [
            (
                f"{tag}server RSS, {report.connections:,} connections open and idle",
                f"{mib(current.rss_idle)} ({current.fds_idle:,} fds)",
            ),
            (
                f"{tag}server RSS after all connections closed",
                f"{mib(current.rss_after)} ({current.fds_after} fds)",
            ),
        ]
    rows.append(("server RSS peak (0.5 s samples)", mib(report.rss_peak)))
    if report.rss_start and report.rss_after:
        change = (report.rss_after - report.rss_start) / report.rss_start
        rows.append(("after vs cold start (allocator pools kept for reuse)", f"{change:+.1%}"))
    if report.rss_baseline and report.rss_after:
        change = (report.rss_after - report.rss_baseline) / report.rss_baseline
        verdict = "returned" if report.memory_returned(tolerance) else "NOT returned"
        label = "warmed-up baseline (round 1 after)" if many else "start"
        rows.append((f"after vs {label}, limit +{tolerance:.0%}", f"{change:+.1%}: {verdict}"))
    if many and report.rounds[0].rss_after and report.rss_after:
        first = report.rounds[0].rss_after
        rows.append(
            (
                "after, last round vs round 1 (growth per round = leak)",
                f"{(report.rss_after - first) / first:+.1%}",
            )
        )
    rows += [
        ("server exit status after SIGTERM", str(report.server_exit)),
        ("RLIMIT_NOFILE (soft, both processes)", f"{report.fd_limit:,}"),
    ]
    if report.timed_out:
        rows.append(("timed out", "yes"))
    if report.server_failed:
        rows.append(("server failed", report.server_failed))
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'':<{width}} | value |", f"| {'-' * width} | ----- |"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
    failures: Counter[str] = Counter()
    for current in report.rounds:
        failures += current.load.failures
    if failures:
        lines += ["", "Failures:", ""]
        lines += [f"- {count:,} x {reason}" for reason, count in failures.most_common(10)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections",
        type=int,
        default=2000,
        help="keep-alive connections open at once (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=100_000,
        help="requests in total, per round, over all connections (default: %(default)s)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds to wait before the idle and after readings (default: %(default)s)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.10,
        help="how far above start the after RSS may be, as a fraction (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="repeat load, idle and close this many times (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds for the whole run (default: %(default)s)",
    )
    parser.add_argument(
        "--app", default="apps:hello", help="the app, from bench/ (default: %(default)s)"
    )
    parser.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="the server's request parser, its --http (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.connections < 1 or args.requests < 1 or args.rounds < 1:
        parser.error("--connections, --requests and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(connections=args.connections, requests=args.requests)
    report.fd_limit = raise_fd_limit(args.connections + 512)[0]

    async def run() -> None:
        try:
            with trio.fail_after(args.timeout):
                await soak(args, report)
        except trio.TooSlowError:
            report.timed_out = True

    trio.run(run)
    print(render(report, args.tolerance))
    if not report.passed(args.tolerance, args.rounds):
        print("\nsoak: FAILED; the server's last stderr lines:", file=sys.stderr)
        for line in report.stderr_tail:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
