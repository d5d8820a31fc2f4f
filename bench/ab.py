"""A/B: two trio-asgi source trees, the same scenarios, interleaved turns, medians and ratios.

Run from any directory with the project's Python (trio, h11, httptools, wsproto) and ``wrk``::

    git worktree add --detach ../ab-base 42071d8         # A: the code before
    python bench/ab.py ../ab-base .                       # B: this checkout; about 10 minutes
    python bench/ab.py ../ab-base . --quick               # about 3 minutes

A and B are directories holding a ``trio_asgi`` package (checkouts, git worktrees of two
commits). What it does, reusing ``bench/run.py`` (server start and stop, ``wrk`` and its
parsing, ``bench/wsclient.py``, the RSS measurement, the pinning: servers on core 0, load on
core 1) and ``bench/instructions.py``:

1. Starts ``python -m trio_asgi`` for each side and parser (``--http h11`` and
   ``--http httptools``) serving this checkout's ``bench/apps.py:app``, each with its tree as
   working directory and first on ``PYTHONPATH`` (``python -m`` puts the working directory
   first on ``sys.path``, so that tree's ``trio_asgi`` is served, not the installed one).
2. Rounds: in each, every throughput scenario runs once on A, then once on B (A B A B ...):
   ``hello-64-h11`` and ``hello-64-httptools`` (``GET /`` over 64 keep-alive connections),
   ``post-64`` (a 16 KiB ``POST /echo``, 64 connections, h11), ``ws-16`` (WebSocket echo of
   32 B over 16 connections, h11). Many short rounds spread the machine's drift and its
   neighbours over both sides; the turn-to-turn spread is reported with the medians.
3. RSS per idle keep-alive connection (``rss-h11``, ``rss-httptools``): a fresh server per
   side and round, alternating A B, measured as ``bench/run.py`` does.
4. Instructions per request under callgrind (``bench/instructions.py``), for both trees and
   both parsers, while the RSS rounds run (instruction counts do not mind a busy CPU).
5. Prints a Markdown table: per scenario A's and B's medians, B/A, each side's spread
   ((max - min) / median over its turns), the range of the per-round ratios, and whether B
   is within the bound (throughput B/A >= 0.97, RSS and instructions B <= A * 1.03 and
   B <= A).

Every subprocess is stopped at the end, whatever happened. Linux only (``/proc``,
``taskset``, ``valgrind``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import instructions
import run as shared

SIDES: Final = ("A", "B")
PARSERS: Final = ("h11", "httptools")
THROUGHPUT_BOUND: Final = 0.97  # B/A at least this: "within 3% of before (or better)"
INSTRUCTIONS_BOUND: Final = 1.03  # B/A at most this


@dataclass(frozen=True)
class Case:
    """A throughput scenario of ``bench/run.py`` with the parser it runs under."""

    key: str
    scenario: str  # a key of shared.SCENARIOS
    http: str


CASES: Final = [
    Case("hello-64-h11", "hello-64", "h11"),
    Case("hello-64-httptools", "hello-64", "httptools"),
    Case("post-64", "post-64", "h11"),
    Case("ws-16", "ws-16", "h11"),
]
RSS_KEYS: Final = [f"rss-{http}" for http in PARSERS]
ALL_KEYS: Final = [*(case.key for case in CASES), *RSS_KEYS, "instructions"]


@dataclass
class Results:
    turns: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # key -> side -> req/s
    p99: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # key -> side -> ms
    rss: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # key -> side -> KiB
    counts: list[instructions.Count] = field(default_factory=list)
    driver: str = ""
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False


def server_command(http: str) -> Callable[[int], list[str]]:
    return lambda port: [*shared.trio_asgi_command(port), "--http", http, shared.APP]


@contextlib.contextmanager
def servers(
    trees: dict[str, Path], parsers: list[str], logs: Path, results: Results
) -> Iterator[dict[tuple[str, str], shared.Server]]:
    """One server per (side, parser), stopped on the way out whatever happened."""
    running: dict[tuple[str, str], shared.Server] = {}
    try:
        for http in parsers:
            for side, src in trees.items():
                name = f"{side}-{http}"
                server, why = shared.start_server(name, logs, server_command(http), src)
                if server is None:
                    results.notes.append(f"{name} did not start: {why}")
                    print(f"ab: {name} did not start: {why}", file=sys.stderr)
                else:
                    running[side, http] = server
        yield running
    finally:
        for server in running.values():
            server.stop()


def run_throughput(
    args: argparse.Namespace, trees: dict[str, Path], results: Results, logs: Path
) -> None:
    cases = [case for case in CASES if case.key in args.scenarios]
    parsers = [http for http in PARSERS if any(case.http == http for case in cases)]
    if not cases:
        return
    lua = shared.write_post_lua(logs)
    scenarios = {scenario.key: scenario for scenario in shared.SCENARIOS}
    with servers(trees, parsers, logs, results) as running:
        for number in range(1, args.rounds + 1):
            for case in cases:
                for side in SIDES:
                    server = running.get((side, case.http))
                    if server is None or server.process.poll() is not None:
                        continue
                    if time.monotonic() + args.duration > args.deadline:
                        results.timed_out = True
                        return
                    sample = shared.run_load(scenarios[case.scenario], server, args.duration, lua)
                    print(
                        f"ab: round {number} {case.key} {side}: {sample.rps:,.0f}/s, "
                        f"p99 {sample.p99_ms:.2f} ms, errors {sample.errors}",
                        file=sys.stderr,
                    )
                    if sample.rps <= 0 or sample.errors:
                        results.notes.append(
                            f"round {number}, {case.key}, {side}: "
                            + ("no result" if sample.rps <= 0 else f"{sample.errors} errors")
                        )
                    if sample.rps > 0:
                        results.turns.setdefault(case.key, {}).setdefault(side, []).append(
                            sample.rps
                        )
                        results.p99.setdefault(case.key, {}).setdefault(side, []).append(
                            sample.p99_ms
                        )
        for (side, http), server in running.items():
            if server.process.poll() is not None:
                results.notes.append(f"{side}-{http} exited during the run: {server.log_tail()}")


def run_rss(args: argparse.Namespace, trees: dict[str, Path], results: Results, logs: Path) -> None:
    keys = [key for key in RSS_KEYS if key in args.scenarios]
    for number in range(1, args.rss_rounds + 1):
        for key in keys:
            http = key.removeprefix("rss-")
            for side, src in trees.items():
                if time.monotonic() + 30 > args.deadline:
                    results.timed_out = True
                    return
                name = f"{side}-{http}-rss"
                server, why = shared.start_server(name, logs, server_command(http), src)
                if server is None:
                    results.notes.append(f"{name} did not start: {why}")
                    continue
                try:
                    kib, note = shared.measure_rss(server, args.rss_connections, args.settle)
                finally:
                    server.stop()
                results.rss.setdefault(key, {}).setdefault(side, []).append(kib)
                if note:
                    results.notes.append(f"round {number}, {key}, {side}: {note}")
                print(f"ab: round {number} {key} {side}: {kib:.2f} KiB", file=sys.stderr)


def run_instructions(args: argparse.Namespace, trees: dict[str, Path], results: Results) -> None:
    try:
        results.driver, results.counts = instructions.measure(
            list(trees.values()), list(PARSERS), args.counts, args.driver, jobs=args.jobs
        )
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        results.notes.append(f"instructions: {error}")
    for count in results.counts:
        per = f"{count.per_request:,.0f}"
        print(f"ab: instructions {count.http} {count.src}: {per}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    """(max - min) / median of ``values``, as a percentage; a dash for fewer than two."""
    if len(values) < 2:
        return "-"
    return f"{(max(values) - min(values)) / statistics.median(values):.0%}"


def paired(a: list[float], b: list[float]) -> str:
    """The median and range of B/A over the rounds that have both turns: a round's two turns
    are seconds apart, so their ratio drifts less than the medians do."""
    ratios = [y / x for x, y in zip(a, b, strict=False) if x]
    if len(ratios) < 2:
        return "-"
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"


def row(title: str, a: list[float], b: list[float], unit: str, higher_is_better: bool) -> str:
    med_a, med_b = statistics.median(a), statistics.median(b)
    ratio = med_b / med_a if med_a else float("inf")
    if higher_is_better:
        verdict = "yes" if ratio >= THROUGHPUT_BOUND else "**no**"
    else:
        verdict = "yes" if ratio <= 1.0 else "**no**"
    digits = 2 if unit == "KiB" else 0
    return (
        f"| {title} | {med_a:,.{digits}f} | {med_b:,.{digits}f} | {ratio:.3f} | "
        f"{spread(a)} / {spread(b)} | {paired(a, b)} | {len(a)} / {len(b)} | {verdict} |"
    )


TITLES: Final = {
    "hello-64-h11": "hello/64, h11 (req/s)",
    "hello-64-httptools": "hello/64, httptools (req/s)",
    "post-64": "POST echo 16 KiB/64, h11 (req/s)",
    "ws-16": "WebSocket echo 32 B/16, h11 (round trips/s)",
    "rss-h11": "RSS per idle keep-alive connection, h11 (KiB)",
    "rss-httptools": "RSS per idle keep-alive connection, httptools (KiB)",
}


def render(args: argparse.Namespace, trees: dict[str, Path], results: Results) -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rss = f", {args.rss_rounds} RSS rounds of {args.rss_connections:,} connections"
    rss = rss if results.rss else ""
    lines = [
        f"A = `{trees['A']}` ({instructions.commit_of(trees['A'])}), "
        f"B = `{trees['B']}` ({instructions.commit_of(trees['B'])}); "
        f"`python bench/ab.py {' '.join(args.argv)}` on {time.strftime('%Y-%m-%d')}; "
        f"{shared.machine()}; {args.rounds} rounds of {args.duration:g} s per side and "
        f"scenario (A B A B ...){rss}; load average at the end {load}.",
        "",
        "| scenario | A (median) | B (median) | B/A | spread A / B | "
        "B/A per round: median (range) | turns | within bound |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in CASES:
        sides = results.turns.get(case.key, {})
        if sides.get("A") and sides.get("B"):
            lines.append(row(TITLES[case.key], sides["A"], sides["B"], "/s", True))
    for key in RSS_KEYS:
        sides = results.rss.get(key, {})
        if sides.get("A") and sides.get("B"):
            lines.append(row(TITLES[key], sides["A"], sides["B"], "KiB", False))
    by_http: dict[str, dict[Path, float]] = {}
    for count in results.counts:
        by_http.setdefault(count.http, {})[count.src] = count.per_request
    for http, per_tree in by_http.items():
        a, b = per_tree.get(trees["A"]), per_tree.get(trees["B"])
        if a and b:
            ratio = b / a
            verdict = "yes" if ratio <= INSTRUCTIONS_BOUND else "**no**"
            lines.append(
                f"| instructions per request, {http} (callgrind) | {a:,.0f} | {b:,.0f} | "
                f"{ratio:.3f} | exact | - | 1 / 1 | {verdict} |"
            )
    p99 = [
        f"{case.key} {statistics.median(s['A']):.2f} / {statistics.median(s['B']):.2f}"
        for case in CASES
        if (s := results.p99.get(case.key, {})).get("A") and s.get("B")
    ]
    lines += [
        "",
        "Spread: (max - min) / median of one side's turns. Bounds: throughput B/A at least "
        f"{THROUGHPUT_BOUND}; RSS B/A at most 1; instructions B/A at most {INSTRUCTIONS_BOUND}.",
    ]
    if p99:
        lines.append(f"Median p99 latency, A / B (ms): {'; '.join(p99)}.")
    if results.counts:
        low, high = args.counts
        lines.append(
            f"Instructions: `bench/instructions.py`, {results.driver} driver, keep-alive "
            f"`GET /`, ({high:,} - {low:,} requests) / {high - low:,}."
        )
    notes = list(results.notes)
    if results.timed_out:
        notes.append(f"stopped at the --timeout of {args.timeout:g} s; some turns are missing")
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="tree A (before): a directory with trio_asgi/")
    parser.add_argument("b", type=Path, help="tree B (after)")
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds of 2 s, 1 RSS round, counts 100,600"
    )
    parser.add_argument("--rounds", type=int, help="throughput rounds (default 8, quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per turn (default 4, quick 2)")
    parser.add_argument("--rss-rounds", type=int, help="RSS rounds (default 3, quick 1)")
    parser.add_argument(
        "--rss-connections", type=int, help="idle connections per RSS reading (default 2000)"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before RSS readings")
    parser.add_argument(
        "--scenarios", help=f"comma-separated, from {', '.join(ALL_KEYS)} (default: all)"
    )
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind counts")
    parser.add_argument(
        "--counts",
        type=instructions.parse_counts,
        help="instructions: LOW,HIGH requests (default 100,1500; quick 100,600)",
    )
    parser.add_argument("--driver", choices=("auto", "memory", "socket"), default="auto")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="bound on the run, seconds")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds or (3 if args.quick else 8)
    args.duration = args.duration or (2.0 if args.quick else 4.0)
    args.rss_rounds = args.rss_rounds or (1 if args.quick else 3)
    args.rss_connections = args.rss_connections or 2000
    args.counts = args.counts or ((100, 600) if args.quick else instructions.DEFAULT_COUNTS)
    args.scenarios = args.scenarios.split(",") if args.scenarios else list(ALL_KEYS)
    if args.no_instructions:
        args.scenarios = [key for key in args.scenarios if key != "instructions"]
    if unknown := set(args.scenarios) - set(ALL_KEYS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration <= 0 or args.rss_rounds < 1:
        parser.error("--rounds and --rss-rounds must be at least 1, --duration positive")
    for tree in (args.a, args.b):
        if not (tree / "trio_asgi" / "__init__.py").is_file():
            parser.error(f"{tree} has no trio_asgi/__init__.py")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = ["wrk", "taskset"] + (["valgrind"] if "instructions" in args.scenarios else [])
    if missing := [tool for tool in tools if shutil.which(tool) is None]:
        print(f"ab: needs {' and '.join(missing)} on the PATH", file=sys.stderr)
        return 2
    shared.raise_fd_limit(args.rss_connections + 1024)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    args.deadline = time.monotonic() + args.timeout
    results = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trio-asgi-ab-") as logs:
        run_throughput(args, trees, results, Path(logs))
        counting = threading.Thread(target=run_instructions, args=(args, trees, results))
        if "instructions" in args.scenarios:
            counting.start()
        try:
            run_rss(args, trees, results, Path(logs))
        finally:
            if counting.is_alive():
                counting.join()
    print(render(args, trees, results))
    print(f"\nab: {time.monotonic() - started:.0f} s", file=sys.stderr)
    measured = results.turns or results.rss or results.counts
    return 0 if measured and not results.timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
