"""The two request parsers side by side, without sockets: microseconds per request cycle.

Each scenario feeds one request's bytes to a parser, pulls events to ``END_OF_MESSAGE`` and
starts the next cycle, as ``HTTP11Connection`` does; the median of ``--repeat`` runs of
``--number`` cycles is printed as a Markdown table. Run from the repository root::

    python bench/parsers.py
    python bench/parsers.py --number 2000 --repeat 3   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trio_asgi._h11.httptools import HttptoolsParser
from trio_asgi._h11.parsing import END_OF_MESSAGE, NEED_DATA, H11Parser, RequestParser

HEAD = (
    b"Host: localhost:8000\r\nUser-Agent: wrk/4.2\r\nAccept: */*\r\n"
    b"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
)
SCENARIOS = {
    "GET, 5 headers": b"GET /plaintext HTTP/1.1\r\n" + HEAD + b"\r\n",
    "POST, 1 KiB Content-Length body": (
        b"POST /echo HTTP/1.1\r\n" + HEAD + b"Content-Length: 1024\r\n\r\n" + b"x" * 1024
    ),
    "POST, 4 x 256 B chunked body": (
        b"POST /echo HTTP/1.1\r\n"
        + HEAD
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + (b"100\r\n" + b"y" * 256 + b"\r\n") * 4
        + b"0\r\n\r\n"
    ),
    "GET, 30 headers": (
        b"GET / HTTP/1.1\r\n"
        + HEAD
        + b"".join(b"X-Header-%d: value number %d\r\n" % (i, i) for i in range(25))
        + b"\r\n"
    ),
}
PARSERS: dict[str, type[RequestParser]] = {"h11": H11Parser, "httptools": HttptoolsParser}


def one_cycle(parser: RequestParser, data: bytes) -> None:
    parser.receive_data(data)
    while True:
        event = parser.next_event()
        if event is END_OF_MESSAGE:
            break
        if event is NEED_DATA:
            raise RuntimeError("the scenario's request is incomplete")
    parser.start_next_cycle()


def measure(parser_class: type[RequestParser], data: bytes, number: int, repeat: int) -> float:
    """Median microseconds per request cycle."""
    parser = parser_class(16 * 1024)
    runs = timeit.repeat(lambda: one_cycle(parser, data), number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--number", type=int, default=20_000, help="cycles per run")
    options.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = options.parse_args()
    print("| request | h11 (µs) | httptools (µs) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name, data in SCENARIOS.items():
        h11_time, httptools_time = (
            measure(parser, data, args.number, args.repeat) for parser in PARSERS.values()
        )
        print(
            f"| {name} | {h11_time:.1f} | {httptools_time:.1f} | {h11_time / httptools_time:.1f}x |"
        )


if __name__ == "__main__":
    main()
