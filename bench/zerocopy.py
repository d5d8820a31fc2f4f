"""A large download through ``http.response.zerocopysend`` against ``http.response.body``.

::

    python bench/zerocopy.py                       # 100 MiB, 7 rounds, h11
    python bench/zerocopy.py --size-mib 20 --rounds 3

One server process (``python bench/zerocopy.py --serve FILE``: this file's app under
``trio_asgi.serve`` on 127.0.0.1, port 0, access log off) serves one file of ``--size-mib``
MiB of random bytes, declared with ``Content-Length``, four ways:

- ``/zerocopy``: one ``http.response.zerocopysend`` of the whole file (``os.sendfile``);
- ``/pathsend``: one ``http.response.pathsend`` (the server opens it; ``os.sendfile``);
- ``/body``: ``http.response.body`` chunks of ``CHUNK`` (64 KiB) read with ``os.pread``, as an
  app without the extension sends a file;
- ``/body-1m``: the same with 1 MiB chunks.

The client (this process) downloads each path in turn over a keep-alive connection, for
``--rounds`` rounds interleaved (A B C D, A B C D, ...) so the machine's drift falls on all
alike, reading into one reused buffer. For every download it records the wall time and the
server process's CPU time (user + system, from ``/proc/PID/stat``), and prints the medians,
the throughput and each mode's ratio to ``/body``. Linux only (``/proc``, ``os.sendfile``).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

CHUNK: Final = 64 * 1024  # bytes per http.response.body message (64 KiB)
BIG_CHUNK: Final = 1024 * 1024  # bytes per message for /body-1m (1 MiB)
MODES: Final = ("/body", "/body-1m", "/zerocopy", "/pathsend")
RECV_SIZE: Final = 1024 * 1024  # bytes the client asks for per recv (1 MiB)


def make_app(path: str) -> Any:
    size = os.path.getsize(path)
    length = [(b"content-length", str(size).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": length})
        route = scope["path"]
        if route == "/pathsend":
            await send({"type": "http.response.pathsend", "path": path})
            return
        with open(path, "rb") as file:  # noqa: ASYNC230 - the same for every mode
            if route == "/zerocopy":
                await send({"type": "http.response.zerocopysend", "file": file})
                return
            chunk = CHUNK if route == "/body" else BIG_CHUNK
            fd = file.fileno()
            for offset in range(0, size, chunk):
                data = os.pread(fd, chunk, offset)
                more = offset + len(data) < size
                await send({"type": "http.response.body", "body": data, "more_body": more})

    return app


def serve(path: str) -> None:
    import trio

    from trio_asgi import Config
    from trio_asgi import serve as serve_app

    async def main() -> None:
        config = Config(host="127.0.0.1", port=0, access_log=False)
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(serve_app, make_app(path), config)
            print(listeners[0][1], flush=True)

    trio.run(main)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat`` 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def download(sock: socket.socket, target: str, buffer: memoryview) -> int:
    """GET ``target`` on the keep-alive ``sock``; the body's length (read and dropped)."""
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        n = sock.recv_into(buffer)
        if not n:
            raise ConnectionError("the server closed the connection")
        head += bytes(buffer[:n])
    head, _, rest = head.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    got = len(rest)
    while got < length:
        n = sock.recv_into(buffer)
        if not n:
            raise ConnectionError(f"the body ended after {got} of {length} bytes")
        got += n
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "download.bin")
        with open(path, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1024 * 1024))
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", path], stdout=subprocess.PIPE, env=env, text=True
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            walls: dict[str, list[float]] = {mode: [] for mode in MODES}
            cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
            buffer = memoryview(bytearray(RECV_SIZE))
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for mode in MODES:  # warm-up: the page cache, the code paths
                    download(sock, mode, buffer)
                for _ in range(args.rounds):
                    for mode in MODES:
                        cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
                        if download(sock, mode, buffer) != size:
                            raise RuntimeError(f"{mode}: wrong length")
                        walls[mode].append(time.perf_counter() - wall0)
                        cpus[mode].append(cpu_seconds(server.pid) - cpu0)
        finally:
            server.terminate()
            server.wait()
    base_wall = statistics.median(walls["/body"])
    base_cpu = statistics.median(cpus["/body"])
    print(f"{args.size_mib} MiB over loopback, {args.rounds} rounds, medians:")
    print("| mode | wall s | MiB/s | server CPU s | wall / body | CPU / body |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode in MODES:
        wall = statistics.median(walls[mode])
        cpu = statistics.median(cpus[mode])
        print(
            f"| {mode} | {wall:.3f} | {args.size_mib / wall:.0f} | {cpu:.3f} | "
            f"{wall / base_wall:.2f} | {cpu / base_cpu if base_cpu else float('nan'):.2f} |"
        )


if __name__ == "__main__":
    main()
