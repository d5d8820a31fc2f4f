"""TLS side by side: trio-asgi and its peers over HTTPS, the same certificate, interleaved.

Run from the repository root with the Python ``bench/run.py`` uses (trio-asgi, trustme,
uvicorn[standard], hypercorn[trio]) and ``wrk`` built with OpenSSL::

    python bench/tls.py            # 3 rounds of 5 s per server and scenario: about 5 minutes
    python bench/tls.py --quick    # 1 round of 2 s: under a minute

What it does, reusing ``bench/run.py`` (the commands, the pinning: servers on core 0, ``wrk``
on core 1, its parsing, the medians):

1. Makes a certificate for ``127.0.0.1`` with ``trustme`` (a throwaway CA) in a temporary
   directory, once per run; every server gets the same ``cert.pem`` and ``key.pem``.
2. Starts each server over TLS (trio-asgi and Uvicorn with ``--ssl-certfile``/
   ``--ssl-keyfile``, Hypercorn with ``--certfile``/``--keyfile``), and, for the cost of TLS
   itself, the same server in the clear; waits until each answers ``GET /``.
3. For each scenario the servers take turns, A B C ..., A B C ... (``--rounds``):
   ``hello-64-tls`` (``GET /`` over 64 keep-alive HTTPS connections), ``close-64-tls`` (a new
   HTTPS connection per request, 64 at a time: a full handshake each) and ``hello-64``
   (plain, the reference for TLS / plain).
4. Prints a Markdown table: per scenario and server the median req/s, p50 and p99, the ratio
   to ``uvicorn-h11`` (the peer of issue 12's target), the spread ((max - min) / median over
   the turns) and, for ``hello-64-tls``, TLS / plain; writes it into ``docs/performance.md``
   between the ``bench-tls`` markers (``bench/run.py``'s own block is left alone).

wrk offers TLS 1.3 (OpenSSL 3) and every server here terminates TLS with Python's ``ssl``
module, so they all negotiate the same protocol and cipher (printed under the table).
Every subprocess is stopped at the end, whatever happened. Linux only (``taskset``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import run as shared

START_MARKER: Final = "<!-- bench-tls:start -->"
END_MARKER: Final = "<!-- bench-tls:end -->"
PEER: Final = "uvicorn-h11"
SERVERS: Final = [
    "trio-asgi",
    "trio-asgi-httptools",
    "uvicorn-h11",
    "uvicorn-httptools",
    "hypercorn-trio",
    "hypercorn-asyncio",
]


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    scenario: shared.Scenario
    tls: bool


CASES: Final = [
    Case(
        "hello-64-tls",
        "hello over TLS, 64 keep-alive connections",
        shared.Scenario("hello-64-tls", "", "wrk", 64),
        tls=True,
    ),
    Case(
        "close-64-tls",
        "hello over TLS, new connection per request, 64",
        shared.Scenario("close-64-tls", "", "wrk", 64, close=True),
        tls=True,
    ),
    Case(
        "hello-64",
        "hello in the clear, 64 keep-alive connections",
        shared.Scenario("hello-64", "", "wrk", 64),
        tls=False,
    ),
]


@dataclass(frozen=True)
class Certificate:
    cert: Path  # the server's chain, PEM
    key: Path  # its private key, PEM


def make_certificate(directory: Path) -> Certificate:
    """A certificate for 127.0.0.1 from a throwaway ``trustme`` CA, written into ``directory``."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert(shared.HOST, "localhost")
    cert, key = directory / "cert.pem", directory / "key.pem"
    issued.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return Certificate(cert, key)


def tls_options(name: str, certificate: Certificate) -> list[str]:
    """``name``'s TLS options (Hypercorn spells them differently)."""
    if name.startswith("hypercorn"):
        return ["--certfile", str(certificate.cert), "--keyfile", str(certificate.key)]
    return ["--ssl-certfile", str(certificate.cert), "--ssl-keyfile", str(certificate.key)]


def server_command(name: str, certificate: Certificate | None) -> Callable[[int], list[str]]:
    """``run.py``'s command line for ``name``, with the TLS options before the app."""

    def command(port: int) -> list[str]:
        line = shared.server_commands(port)[name]
        extra = tls_options(name, certificate) if certificate else []
        return [*line[:-1], *extra, line[-1]]

    return command


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the readiness probe; wrk does not verify either
    return context


def https_get(port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """One ``GET /`` over TLS; (answered 200, "TLSv1.3 TLS_AES_256_GCM_SHA384")."""
    try:
        with (
            socket.create_connection((shared.HOST, port), timeout=timeout) as raw,
            client_context().wrap_socket(raw) as sock,
        ):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            ok = sock.recv(64).startswith(b"HTTP/1.1 200")
            cipher = sock.cipher()
            return ok, f"{sock.version()} {cipher[0] if cipher else '?'}"
    except OSError:
        return False, ""


def start(
    name: str, label: str, certificate: Certificate | None, logs: Path
) -> tuple[shared.Server | None, str]:
    """Start ``name`` (TLS with ``certificate``) pinned to the server core, as
    :func:`run.start_server` does, but probing over TLS; (None, why) if it does not answer."""
    if certificate is None:
        return shared.start_server(label, logs, server_command(name, None))
    port = shared.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(
                None, [str(shared.BENCH_DIR), str(shared.REPO_ROOT), os.environ.get("PYTHONPATH")]
            )
        ),
    }
    log = logs / f"{label}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", shared.SERVER_CORE, *server_command(name, certificate)(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=shared.REPO_ROOT,
        )
    server = shared.Server(label, port, process, log)
    deadline = time.monotonic() + shared.STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None, f"exited with {process.returncode}: {server.log_tail()}"
        if https_get(port, timeout=0.5)[0]:
            return server, ""
        time.sleep(0.1)
    server.stop()
    return None, f"did not answer within {shared.STARTUP_TIMEOUT:.0f} s: {server.log_tail()}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` and its descendants (``/proc/PID/stat``)."""
    total = 0
    for process in shared.descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Results:
    samples: dict[str, dict[str, list[shared.Sample]]] = field(default_factory=dict)
    cpu_us: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # per request
    negotiated: dict[str, str] = field(default_factory=dict)  # server -> "TLSv1.3 cipher"
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False

    def turns(self, key: str, name: str) -> list[shared.Sample]:
        return [s for s in self.samples.get(key, {}).get(name, []) if s.rps > 0]

    def median(self, key: str, name: str) -> shared.Sample | None:
        runs = self.turns(key, name)
        if not runs:
            return None
        return shared.Sample(
            statistics.median(s.rps for s in runs),
            statistics.median(s.p50_ms for s in runs),
            statistics.median(s.p99_ms for s in runs),
            sum(s.errors for s in runs),
        )

    def spread(self, key: str, name: str) -> float:
        rps = [s.rps for s in self.turns(key, name)]
        return (max(rps) - min(rps)) / statistics.median(rps) if len(rps) > 1 else 0.0


@contextlib.contextmanager
def servers_running(
    args: argparse.Namespace, certificate: Certificate, logs: Path, results: Results
) -> Iterator[dict[tuple[str, bool], shared.Server]]:
    running: dict[tuple[str, bool], shared.Server] = {}
    modes = sorted({case.tls for case in CASES if case.key in args.scenarios}, reverse=True)
    try:
        for tls in modes:
            for name in args.servers:
                label = f"{name}{'-tls' if tls else ''}"
                server, why = start(name, label, certificate if tls else None, logs)
                if server is None:
                    results.notes.append(f"{label} skipped: {why}")
                    print(f"tls: {label} skipped: {why}", file=sys.stderr)
                    continue
                running[name, tls] = server
                if tls:
                    results.negotiated[name] = https_get(server.port)[1]
        yield running
    finally:
        for server in running.values():
            server.stop()


def run(args: argparse.Namespace, results: Results, logs: Path) -> None:
    deadline = time.monotonic() + args.timeout
    certificate = make_certificate(logs)
    lua = shared.write_post_lua(logs)
    cases = [case for case in CASES if case.key in args.scenarios]
    with servers_running(args, certificate, logs, results) as running:
        for case in cases:
            per_server = results.samples.setdefault(case.key, {})
            for number in range(1, args.rounds + 1):
                for name in args.servers:
                    server = running.get((name, case.tls))
                    if server is None or server.process.poll() is not None:
                        continue
                    if time.monotonic() + args.duration > deadline:
                        results.timed_out = True
                        return
                    scheme = "https" if case.tls else "http"
                    cpu = cpu_seconds(server.pid)
                    sample = shared.run_load(case.scenario, server, args.duration, lua, scheme)
                    cpu = cpu_seconds(server.pid) - cpu
                    per_server.setdefault(name, []).append(sample)
                    if sample.rps > 0:
                        per_request = 1e6 * cpu / (sample.rps * args.duration)
                        results.cpu_us.setdefault(case.key, {}).setdefault(name, []).append(
                            per_request
                        )
                    if sample.rps <= 0:
                        results.notes.append(f"{case.key}, round {number}, {name}: no result")
                    print(
                        f"tls: {case.key} round {number} {name}: {sample.rps:,.0f} req/s, "
                        f"p50 {sample.p50_ms:.2f} ms, p99 {sample.p99_ms:.2f} ms, "
                        f"errors {sample.errors}, "
                        f"{1e6 * cpu / max(1.0, sample.rps * args.duration):.0f} us CPU/request",
                        file=sys.stderr,
                    )
        for server in running.values():
            if server.process.poll() is not None:
                results.notes.append(f"{server.name} exited during the run: {server.log_tail()}")


INSTRUCTION_SERVERS: Final = [
    "trio-asgi",
    "uvicorn-h11",
    "trio-asgi-httptools",
    "uvicorn-httptools",
]
CALLGRIND_STARTUP: Final = 300.0  # seconds for a server under callgrind to answer
REQUEST: Final = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


def request_loop(sock: socket.socket, count: int) -> None:
    """``count`` keep-alive ``GET /`` on ``sock``, one at a time, each read to its end."""
    buffer = b""
    for _ in range(count):
        sock.sendall(REQUEST)
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buffer[:head_end].lower()
                length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                end = head_end + 4 + length
                if len(buffer) >= end:
                    if not buffer.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"not a 200: {buffer[:60]!r}")
                    buffer = buffer[end:]
                    break
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            buffer += chunk


def callgrind_count(name: str, certificate: Certificate | None, requests: int, logs: Path) -> int:
    """Instructions callgrind counts in ``name``'s server process serving ``requests``
    keep-alive ``GET /`` on one connection (over TLS with ``certificate``), start-up and
    shutdown (SIGTERM) included.

    Raises:
        RuntimeError: the server did not start, a request failed, or no count was printed.
    """
    port = shared.free_port()
    label = f"callgrind-{name}-{'tls' if certificate else 'plain'}-{requests}"
    log = logs / f"{label}.log"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={logs}/{label}.out",
        *server_command(name, certificate)(port),
    ]
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(shared.BENCH_DIR), str(shared.REPO_ROOT)])),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=shared.REPO_ROOT,
        )
    try:
        deadline = time.monotonic() + CALLGRIND_STARTUP
        while not (https_get(port, 5.0)[0] if certificate else shared.http_get(port, 5.0)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label} did not start: {log.read_text()[-300:]}")
            time.sleep(0.5)
        with socket.create_connection((shared.HOST, port), timeout=60) as raw:
            if certificate:
                with client_context().wrap_socket(raw) as sock:
                    request_loop(sock, requests)
            else:
                request_loop(raw, requests)
        process.terminate()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text(errors="replace")
    matches = re.findall(r"Collected\s*:\s*(\d+)", text)
    if not matches:
        raise RuntimeError(f"{label}: no count: {text[-300:]}")
    return int(matches[-1])


def measure_instructions(args: argparse.Namespace, logs: Path) -> dict[tuple[str, bool], float]:
    """Instructions per request for each server over TLS and in the clear:
    ``(count(HIGH) - count(LOW)) / (HIGH - LOW)``, so start-up and shutdown cancel out."""
    certificate = make_certificate(logs)
    low, high = args.counts
    jobs = []
    for name in [n for n in INSTRUCTION_SERVERS if n in args.servers]:
        for tls in (True, False):
            for requests in (low, high):
                jobs.append((name, tls, requests))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        counts = dict(
            zip(
                jobs,
                pool.map(
                    lambda job: callgrind_count(
                        job[0], certificate if job[1] else None, job[2], logs
                    ),
                    jobs,
                ),
                strict=True,
            )
        )
    per_request: dict[tuple[str, bool], float] = {}
    for name, tls, requests in jobs:
        if requests == high:
            per_request[name, tls] = (counts[name, tls, high] - counts[name, tls, low]) / (
                high - low
            )
            print(
                f"tls: instructions {name} {'TLS' if tls else 'plain'}: "
                f"{per_request[name, tls]:,.0f}",
                file=sys.stderr,
            )
    return per_request


def render_instructions(args: argparse.Namespace, counts: dict[tuple[str, bool], float]) -> str:
    low, high = args.counts
    lines = [
        f"Instructions per keep-alive `GET /` in the server process (callgrind; one connection, "
        f"requests one at a time; ({high} - {low} requests) / {high - low}; "
        "`PYTHONHASHSEED=0`; the client outside callgrind):",
        "",
        f"| server | TLS | plain | TLS - plain | TLS vs {PEER} |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    peer = counts.get((PEER, True))
    for name in INSTRUCTION_SERVERS:
        tls, plain = counts.get((name, True)), counts.get((name, False))
        if tls is None or plain is None:
            continue
        ratio = f"{tls / peer:.2f}x" if peer else "n/a"
        lines.append(f"| {name} | {tls:,.0f} | {plain:,.0f} | {tls - plain:,.0f} | {ratio} |")
    return "\n".join(lines)


def render(args: argparse.Namespace, results: Results) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"Run: `python bench/tls.py{' ' + ' '.join(args.argv) if args.argv else ''}` on "
        f"{time.strftime('%Y-%m-%d')}; {shared.machine()}, {ssl.OPENSSL_VERSION}; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and scenario, interleaved; "
        f"medians over the rounds; 1-minute load average at the end {load:.2f}.",
        "",
        f"| scenario | server | req/s | p50 ms | p99 ms | spread | vs {PEER} | TLS / plain "
        f"| server CPU us/request | CPU vs {PEER} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in CASES:
        if case.key not in results.samples:
            continue
        peer = results.median(case.key, PEER)
        cpu = {n: statistics.median(v) for n, v in results.cpu_us.get(case.key, {}).items()}
        for name in args.servers:
            sample = results.median(case.key, name)
            if sample is None:
                continue
            ratio = f"{sample.rps / peer.rps:.2f}x" if peer else "n/a"
            plain = results.median("hello-64", name)
            versus_plain = (
                f"{sample.rps / plain.rps:.2f}" if plain and case.key == "hello-64-tls" else ""
            )
            mine_cpu, peer_cpu = cpu.get(name), cpu.get(PEER)
            cpu_cell = f"{mine_cpu:.0f}" if mine_cpu else ""
            cpu_ratio = f"{mine_cpu / peer_cpu:.2f}x" if mine_cpu and peer_cpu else ""
            lines.append(
                f"| {case.title} | {name} | {sample.rps:,.0f} | {sample.p50_ms:.2f} | "
                f"{sample.p99_ms:.2f} | {results.spread(case.key, name):.0%} | {ratio} | "
                f"{versus_plain} | {cpu_cell} | {cpu_ratio} |"
            )
    mine, theirs = results.median("hello-64-tls", "trio-asgi"), results.median("hello-64-tls", PEER)
    if mine and theirs:
        ratio = mine.rps / theirs.rps
        rounds = [
            a.rps / b.rps
            for a, b in zip(
                results.samples["hello-64-tls"].get("trio-asgi", []),
                results.samples["hello-64-tls"].get(PEER, []),
                strict=False,
            )
            if a.rps > 0 and b.rps > 0
        ]
        lines += [
            "",
            f"Issue 12's target, h11 hello/64 over TLS vs {PEER} over TLS: **{ratio:.2f}x** "
            f"(per-round ratios {min(rounds):.2f}-{max(rounds):.2f}; bound at least 1.0x: "
            f"{'met' if ratio >= 1.0 else 'not met'}).",
        ]
    negotiated = sorted(set(results.negotiated.values()))
    notes = [f"- negotiated with every server: {', '.join(negotiated)}"] if negotiated else []
    notes.append(
        "- server CPU us/request: the server's user + system CPU time over a turn (its "
        "process and children, `/proc/PID/stat`) over the requests wrk counted, median of "
        "the turns; it moves less with the neighbours' load than req/s does"
    )
    notes += [f"- {note}" for note in results.notes]
    if results.timed_out:
        notes.append(f"- stopped at the --timeout of {args.timeout:g} s; some runs are missing")
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


def write_doc(table: str) -> None:
    """Put ``table`` between the ``bench-tls`` markers of ``docs/performance.md`` (appended
    under a "TLS" heading if the markers are missing)."""
    text = shared.DOC.read_text()
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        text = f"{text.rstrip()}\n\n## TLS\n\n{START_MARKER}\n{END_MARKER}\n"
        start, end = text.find(START_MARKER), text.find(END_MARKER)
    block = f"{START_MARKER}\n\n{table}\n\n{END_MARKER}"
    shared.DOC.write_text(text[:start] + block + text[end + len(END_MARKER) :])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default: 3)")
    parser.add_argument("--duration", type=float, help="seconds per turn (default: 5)")
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated, from {', '.join(c.key for c in CASES)} (default: all; "
        "none: only the instruction counts)",
    )
    parser.add_argument(
        "--servers", help=f"comma-separated, from {', '.join(SERVERS)} (default: all)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="bound on the whole run in seconds"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per request under callgrind, TLS and plain (~10 min)",
    )
    parser.add_argument(
        "--counts", default="200,1200", help="requests of the two callgrind runs (LOW,HIGH)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    try:
        low, high = (int(part) for part in args.counts.split(","))
    except ValueError:
        parser.error("--counts is LOW,HIGH, two integers")
    if not 0 < low < high:
        parser.error("--counts needs 0 < LOW < HIGH")
    args.counts = (low, high)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    if args.scenarios == "none":
        args.scenarios = []
    else:
        args.scenarios = args.scenarios.split(",") if args.scenarios else [c.key for c in CASES]
    args.servers = args.servers.split(",") if args.servers else SERVERS
    shared.check_selection(parser, args, [c.key for c in CASES], list(SERVERS))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"tls: needs {' and '.join(missing)} on the PATH", file=sys.stderr)
        return 2
    if args.instructions and shutil.which("valgrind") is None:
        print("tls: --instructions needs valgrind on the PATH", file=sys.stderr)
        return 2
    results = Results()
    counts: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory(prefix="trio-asgi-tls-") as logs:
        if args.scenarios:
            run(args, results, Path(logs))
        if args.instructions:
            try:
                counts = measure_instructions(args, Path(logs))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                results.notes.append(f"instructions: {error}")
    parts = [render(args, results)] if args.scenarios else []
    if counts:
        parts.append(render_instructions(args, counts))
    if not args.scenarios and results.notes:
        parts.append("Notes:\n\n" + "\n".join(f"- {note}" for note in results.notes))
    table = "\n\n".join(parts)
    print(table)
    if not args.no_write:
        write_doc(table)
        print(f"\ntls: wrote {shared.DOC}", file=sys.stderr)
    measured = any(results.samples.values()) or counts
    return 0 if measured and not results.timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
