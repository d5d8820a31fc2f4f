"""Attacks on the server (issue 9), each measured while a canary keeps asking for ``GET /``.

Run from the repository root with the project's Python::

    python bench/attacks.py                      # every attack, with each parser
    python bench/attacks.py --quick              # smaller counts: a smoke run, ~30 s
    python bench/attacks.py --attack deflate-bomb --http h11
    python bench/attacks.py --src /path/to/other/checkout --json after.json

For each attack and each ``--http`` parser, in turn (every step is bounded):

1. Starts a fresh server, ``python -m trio_asgi --host 127.0.0.1 --port 0 --no-access-log
   --app-dir bench --http PARSER apps:attack`` with ``PYTHONPATH=--src`` (this checkout by
   default), pinned to core 0 (``taskset -c 0``), and reads its port from the "Listening on"
   line on its stderr.
2. Starts the canary, a separate process pinned to core 1 (``attacks.py _canary PORT``): one
   ``GET /`` every 0.1 s on one keep-alive connection, each request's latency recorded, a
   request that fails or takes over 10 s counted as a failure (and the connection replaced).
3. After 0.5 s of canary traffic, reads the server's ``VmRSS`` (the baseline) and CPU time
   (``utime + stime`` of ``/proc/PID/stat``), then runs the attack from this process (its
   threads pinned to core 1 as well). A sampler reads ``VmRSS`` every 20 ms and kills the
   server if it passes ``--rss-cap-mib`` (6 GiB): the outcome then says "killed at N GiB".
4. Once the attack has stopped by itself (each is bounded in count and in time), waits until
   the server is quiet (under 10% of a core over 0.5 s, at most 30 s: it may still be working
   through what the attack sent), reads the CPU time again and the peak RSS (``VmHWM``, or the
   largest sample if the server was killed), stops the canary, and keeps the canary's
   requests that started between the attack's start and that quiet point.
5. Stops the server (SIGTERM, SIGKILL after 3 s).

The attacks (every byte goes to 127.0.0.1; frames are built once, before the clock starts):

- ``deflate-bomb``, ``deflate-bomb-10``: 1 or 10 WebSocket connections to ``/echo`` that
  negotiate permessage-deflate (RFC 7692) and each send ``--bomb-rate`` (6) frames per second
  for ``--duration`` seconds, every frame one binary message of 64 MiB of zeros compressed to
  ~64 KB (raw deflate, the trailing ``00 00 ff ff`` stripped, RSV1 set, masked). A connection
  the server closes is replaced.
- ``queue-fill``: 4 connections to ``/sink`` (the app never receives) with permessage-deflate,
  each sending up to 48 messages of ``WS_MAX_SIZE - 1`` bytes inflated (~16 KB compressed)
  until the server stops reading (a send blocks for 2 s), then holding the connection open
  until ``--duration`` has passed.
- ``fragments``, ``fragments-1m``: on one connection to ``/echo`` without compression, a
  binary frame without FIN, then 3,000,000 (or 1,000,000) empty continuation frames (6 bytes
  each), then a FIN continuation carrying ``end``; the rate is frames over the time from the
  first byte to the echo (or to the server's close). The server runs with
  ``--ws-ping-interval 0``: the flood cannot answer a ping in time, and the ping timeout
  (1011) is not the defence measured.
- ``chunks``: ``POST /drain`` with a chunked body of 1,000,000 one-byte chunks (6 MB).

It prints a Markdown table; ``--json PATH`` also writes the rows as JSON. Linux only
(``/proc``, ``taskset``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
HOST: Final = "127.0.0.1"
APP: Final = "apps:attack"
LISTENING: Final = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")
SERVER_CORE: Final = "0"
CLIENT_CORE: Final = 1
STARTUP_TIMEOUT: Final = 20.0  # seconds for the server to listen
STOP_TIMEOUT: Final = 3.0  # seconds between SIGTERM and SIGKILL
CANARY_INTERVAL: Final = 0.1  # seconds between the canary's requests
CANARY_TIMEOUT: Final = 10.0  # seconds a canary request may take before it counts as failed
CANARY_WARM_UP: Final = 0.5  # seconds of canary traffic before the baseline is read
QUIET_WINDOW: Final = 0.5  # seconds over which the server's CPU use says it is quiet again
QUIET_CPU: Final = 0.1  # the share of one core below which the server counts as quiet
QUIET_MAX: Final = 30.0  # seconds after the attack the wait for quiet may last
SAMPLE_INTERVAL: Final = 0.02  # seconds between RSS samples
READ_SIZE: Final = 65536  # bytes
MIB: Final = 1024 * 1024  # bytes
WS_MAX_SIZE: Final = 16 * MIB  # bytes: trio_asgi.Config.ws_max_size's default
BOMB_SIZE: Final = 64 * MIB  # bytes each deflate-bomb frame inflates to
FRAME_POOL: Final = 4  # pre-built copies of a big frame, each with its own masking key
QUEUE_CONNECTIONS: Final = 4
QUEUE_MESSAGES: Final = 48  # per connection: more than ws_max_queue (32) and the socket buffers
QUEUE_SEND_BLOCKED: Final = 2.0  # seconds a send may block before the server counts as not reading
SEND_SLICE: Final = 256 * 1024  # bytes per send() of a long flood
CANARY_REQUEST: Final = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ATTACKS: Final = (
    "deflate-bomb",
    "deflate-bomb-10",
    "queue-fill",
    "fragments",
    "fragments-1m",
    "chunks",
)


# ---------------------------------------------------------------------------------------------
# WebSocket bytes (RFC 6455 section 5, RFC 7692 section 7.2)
# ---------------------------------------------------------------------------------------------


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR-ed with the repeated 4-byte ``key`` (RFC 6455 section 5.3)."""
    if not payload:
        return b""
    size = len(payload)
    keystream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One masked client frame (RFC 6455 section 5.2), with a fresh masking key."""
    key = os.urandom(4)
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 65536:
        head = bytes([first, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + key + mask(payload, key)


def deflated(size: int) -> bytes:
    """``size`` zero bytes as one permessage-deflate message payload (RFC 7692 section 7.2.1):
    raw deflate, sync-flushed, the trailing ``00 00 ff ff`` removed. The compressor starts
    fresh, so the same payload is valid again and again with context takeover."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(bytes(size)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if not data.endswith(b"\x00\x00\xff\xff"):
        raise RuntimeError("a sync flush ends with 00 00 ff ff")
    return data[:-4]


def compressed_frames(size: int, count: int) -> list[bytes]:
    """``count`` binary frames (RSV1 set), each one message of ``size`` zeros, deflated."""
    payload = deflated(size)
    return [client_frame(0x2, payload, rsv1=True) for _ in range(count)]


class ServerFrames:
    """The server's (unmasked) frames, parsed as they arrive: the close code, data messages."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.close_code: int | None = None
        self.messages = 0  # data frames with FIN
        self.last_payload = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        buffer = self.buffer
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                start = 4
            elif size == 127:
                start = 10
            if len(buffer) < start:
                return
            if size >= 126:
                size = int.from_bytes(buffer[2:start], "big")
            if len(buffer) < start + size:
                return
            fin = buffer[0] & 0x80
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
            elif opcode in (0x0, 0x1, 0x2) and fin:
                self.last_payload = payload
                self.messages += 1


class HandshakeError(Exception):
    """The server did not answer the opening handshake with 101 (or without the extension)."""


def ws_connect(
    port: int, path: str, *, deflate: bool, timeout: float
) -> tuple[socket.socket, bytes]:
    """A WebSocket connection after its opening handshake (RFC 6455 section 4.1), and any
    bytes that came after the 101 response.

    Raises:
        HandshakeError: not a 101, or permessage-deflate asked for and not granted.
        OSError: the connection failed.
    """
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extensions}\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                raise HandshakeError("EOF during the handshake")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 "):
            raise HandshakeError(head.split(b"\r\n", 1)[0].decode("latin-1"))
        if deflate and b"permessage-deflate" not in head.lower():
            raise HandshakeError("permessage-deflate not negotiated")
    except BaseException:
        sock.close()
        raise
    return sock, rest


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


CLOCK_TICK: Final = 1 / os.sysconf("SC_CLK_TCK")  # seconds per /proc/PID/stat tick


def proc_status(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of process ``pid``, in KiB.

    Raises:
        OSError: the process is gone.
    """
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid``, in seconds (``/proc/PID/stat``).

    Raises:
        OSError: the process is gone.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK  # utime, stime (fields 14, 15)


class Server:
    """The server subprocess: its port, its stderr's last lines, its memory and CPU."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.pid = self.process.pid
        self.port = 0
        self.listening = threading.Event()
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        # The sampler's findings:
        self.rss_peak = 0  # KiB, largest VmRSS sample
        self.hwm = 0  # KiB, last VmHWM read
        self.cpu = 0.0  # seconds, last CPU time read
        self.killed_at = 0  # KiB of RSS when the sampler killed the server, else 0
        self._stop_sampling = threading.Event()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_lines.append(line)
            del self.stderr_lines[:-50]
            match = LISTENING.search(line)
            if match and not self.listening.is_set():
                self.port = int(match[1])
                self.listening.set()
        self.listening.set()  # EOF: port 0 says the server never listened

    def wait_listening(self) -> None:
        if not self.listening.wait(STARTUP_TIMEOUT) or not self.port:
            tail = "\n".join(self.stderr_lines[-20:])
            raise RuntimeError(f"the server did not start:\n{tail}")

    def read(self) -> None:
        """One sample: RSS, high-water mark and CPU time (the process may be gone)."""
        try:
            rss, self.hwm = proc_status(self.pid)
            self.cpu = cpu_seconds(self.pid)
        except OSError:  # gone (killed, or exited): the last sample stands
            return
        self.rss_peak = max(self.rss_peak, rss)

    def sample(self, cap_kib: int) -> None:
        """Sample every SAMPLE_INTERVAL until stopped; SIGKILL the server above ``cap_kib``."""
        while not self._stop_sampling.wait(SAMPLE_INTERVAL):
            self.read()
            if self.rss_peak > cap_kib and not self.killed_at and self.process.poll() is None:
                self.killed_at = self.rss_peak
                self.process.kill()

    def start_sampling(self, cap_kib: int) -> threading.Thread:
        thread = threading.Thread(target=self.sample, args=(cap_kib,), daemon=True)
        thread.start()
        return thread

    def stop_sampling(self, thread: threading.Thread) -> None:
        self._stop_sampling.set()
        thread.join()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


SERVER_EXTRA: Final[dict[str, tuple[str, ...]]] = {
    # The flood's sender cannot answer a ping in time (its pong would queue behind megabytes
    # of frames in the socket buffers), and the ping timeout is not what is measured here.
    "fragments": ("--ws-ping-interval", "0"),
    "fragments-1m": ("--ws-ping-interval", "0"),
}


def server_command(args: argparse.Namespace, parser: str, attack: str) -> list[str]:
    """The server's command line for ``attack``: ``--server-cmd`` or ``python -m trio_asgi``,
    then the attack's own options (:data:`SERVER_EXTRA`), pinned with taskset."""
    if args.server_cmd:
        template = args.server_cmd.format(
            python=sys.executable, app_dir=BENCH_DIR, http=parser, app=APP, host=HOST
        )
        command = shlex.split(template)
    else:
        command = [
            sys.executable,
            "-m",
            "trio_asgi",
            "--host",
            HOST,
            "--port",
            "0",
            "--no-access-log",
            "--app-dir",
            str(BENCH_DIR),
            "--http",
            parser,
            APP,
        ]
    command += SERVER_EXTRA.get(attack, ())
    return ["taskset", "-c", SERVER_CORE, *command] if args.pin else command


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """The server's environment: ``--src`` first on ``PYTHONPATH``. The server also runs in
    ``--src`` (``python -m`` puts the working directory before ``PYTHONPATH``)."""
    src = str(Path(args.src).resolve())
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }


# ---------------------------------------------------------------------------------------------
# The canary (a process of its own: python bench/attacks.py _canary PORT)
# ---------------------------------------------------------------------------------------------


def canary_exchange(sock: socket.socket, buffer: bytearray) -> None:
    """One ``GET /`` and its whole response (``200``, ``Content-Length``).

    Raises:
        OSError: a reset, a timeout, an EOF, or not a 200.
    """
    sock.sendall(CANARY_REQUEST)
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            raise OSError("EOF")
        buffer += chunk
    head = bytes(buffer[:end])
    del buffer[: end + 4]
    if not head.startswith(b"HTTP/1.1 200 "):
        raise OSError(f"status {head[:20]!r}")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if match is None:
        raise OSError("no Content-Length")
    length = int(match[1])
    while len(buffer) < length:
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            raise OSError("EOF in the body")
        buffer += chunk
    del buffer[:length]


def canary(port: int) -> int:
    """Until stdin closes: ``GET /`` every CANARY_INTERVAL on a keep-alive connection. Then
    prints a JSON list of ``[start, latency, error]`` (``time.monotonic()`` seconds, which
    every process shares on Linux; latency in seconds; error a string or null)."""
    stop = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    samples: list[tuple[float, float, str | None]] = []
    sock: socket.socket | None = None
    buffer = bytearray()
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            if sock is None:
                sock = socket.create_connection((HOST, port), timeout=CANARY_TIMEOUT)
                buffer.clear()
            canary_exchange(sock, buffer)
            samples.append((started, time.monotonic() - started, None))
        except OSError as exc:
            samples.append((started, time.monotonic() - started, str(exc) or type(exc).__name__))
            if sock is not None:
                sock.close()
                sock = None
        next_at += CANARY_INTERVAL
        now = time.monotonic()
        if next_at < now:  # late (a stall): the next request at once, then the usual pace
            next_at = now
        stop.wait(next_at - now)
    if sock is not None:
        sock.close()
    print(json.dumps(samples))
    return 0


class Canary:
    def __init__(self, port: int, pin: bool) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "_canary", str(port)]
        if pin:
            command = ["taskset", "-c", str(CLIENT_CORE), *command]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def stop(self) -> list[tuple[float, float, str | None]]:
        """Stop the canary (it finishes the request in flight) and return its samples."""
        try:
            out, _ = self.process.communicate(timeout=CANARY_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return []
        return [
            (float(start), float(took), error)
            for start, took, error in (json.loads(out) if out else [])
        ]


# ---------------------------------------------------------------------------------------------
# The attacks: each returns its outcome in words, and stops by itself by ``deadline``
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What an attack needs: the server's port, the clock and the counts."""

    port: int
    deadline: float  # time.monotonic() by which the attack must have stopped
    duration: float  # seconds, for the time-bounded attacks
    bomb_rate: float  # frames per second per connection
    connections: int = 1
    count: int = 0  # frames, messages or chunks
    alive: Callable[[], bool] = lambda: True  # False once the server is gone


@dataclass
class WSTally:
    """What the WebSocket attack connections saw, over all of them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    sent: int = 0  # messages (frames) whose send completed
    closes: Counter[str] = field(default_factory=Counter)  # close code or how it ended
    blocked: int = 0  # connections whose send blocked (the server stopped reading)

    def closed(self, how: str) -> None:
        with self.lock:
            self.closes[how] += 1

    def summary(self) -> str:
        ends = ", ".join(f"{how} x{n}" for how, n in self.closes.most_common())
        return f"{self.connections} conns, {self.sent} frames sent; {ends or 'no close'}"


def _drain(sock: socket.socket, frames: ServerFrames, timeout: float) -> str | None:
    """Read what the server sent, waiting up to ``timeout`` s; how the connection ended
    (``close 1009``, ``EOF``, ``reset``), or None while it is open."""
    readable, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not readable:
        return None
    try:
        data = sock.recv(READ_SIZE)
    except OSError:
        return "reset"
    if not data:
        return f"close {frames.close_code}" if frames.close_code else "EOF"
    frames.feed(data)
    return f"close {frames.close_code}" if frames.close_code else None


def bomb_connection(plan: Plan, pool: list[bytes], tally: WSTally) -> None:
    """One attacking connection: frames at ``plan.bomb_rate`` until the deadline; a connection
    the server closes is replaced by a new one."""
    interval = 1 / plan.bomb_rate
    turn = 0
    while time.monotonic() < plan.deadline and plan.alive():
        try:
            sock, rest = ws_connect(plan.port, "/echo", deflate=True, timeout=5.0)
        except (HandshakeError, OSError) as exc:
            tally.closed(f"handshake failed: {exc}")
            time.sleep(interval)
            continue
        with tally.lock:
            tally.connections += 1
        frames = ServerFrames()
        frames.feed(rest)
        ended = None
        next_at = time.monotonic()
        with sock:
            while ended is None:
                now = time.monotonic()
                if now >= plan.deadline:
                    ended = "open at the end"
                    break
                if now >= next_at:
                    sock.settimeout(max(0.01, plan.deadline - now))
                    try:
                        sock.sendall(pool[turn % len(pool)])
                    except TimeoutError:
                        ended = "send blocked at the end"
                        break
                    except OSError:
                        ended = "reset"
                        break
                    turn += 1
                    with tally.lock:
                        tally.sent += 1
                    next_at = max(next_at + interval, time.monotonic() - interval)
                ended = _drain(sock, frames, min(next_at, plan.deadline) - time.monotonic())
        tally.closed(ended)


def run_threads(target: Callable[..., None], count: int, *args: object) -> None:
    threads = [threading.Thread(target=target, args=args, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def deflate_bomb(plan: Plan) -> str:
    pool = compressed_frames(BOMB_SIZE, FRAME_POOL)
    tally = WSTally()
    plan.deadline = time.monotonic() + plan.duration
    run_threads(bomb_connection, plan.connections, plan, pool, tally)
    return f"{len(pool[0]) // 1024} KiB/frame; {tally.summary()}"


def queue_connection(plan: Plan, pool: list[bytes], tally: WSTally) -> None:
    """One connection to ``/sink``: messages until the server stops reading, then held."""
    try:
        sock, rest = ws_connect(plan.port, "/sink", deflate=True, timeout=5.0)
    except (HandshakeError, OSError) as exc:
        tally.closed(f"handshake failed: {exc}")
        return
    with tally.lock:
        tally.connections += 1
    frames = ServerFrames()
    frames.feed(rest)
    ended = None
    with sock:
        for turn in range(plan.count):
            remaining = plan.deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(min(QUEUE_SEND_BLOCKED, remaining))
            try:
                sock.sendall(pool[turn % len(pool)])
            except TimeoutError:
                with tally.lock:
                    tally.blocked += 1
                break
            except OSError:
                ended = "reset"
                break
            with tally.lock:
                tally.sent += 1
            ended = _drain(sock, frames, 0)
            if ended:
                break
        while ended is None and time.monotonic() < plan.deadline:  # hold it open
            ended = _drain(sock, frames, plan.deadline - time.monotonic())
    tally.closed(ended or "open at the end")


def queue_fill(plan: Plan) -> str:
    pool = compressed_frames(WS_MAX_SIZE - 1, FRAME_POOL)
    tally = WSTally()
    plan.deadline = time.monotonic() + plan.duration
    run_threads(queue_connection, plan.connections, plan, pool, tally)
    return (
        f"{len(pool[0]) // 1024} KiB/msg; {tally.summary()}; "
        f"a send blocked {QUEUE_SEND_BLOCKED:.0f} s on {tally.blocked} of {plan.connections}"
    )


def flood(plan: Plan, sock: socket.socket, data: bytes, ended: threading.Event) -> int:
    """Send ``data`` in slices until it is all sent, ``ended`` is set or the deadline; the
    bytes sent."""
    view = memoryview(data)
    sent = 0
    while sent < len(data) and not ended.is_set():
        remaining = plan.deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(min(1.0, remaining))
        try:
            sent += sock.send(view[sent : sent + SEND_SLICE])
        except TimeoutError:
            continue
        except OSError:
            break
    return sent


def watch(sock: socket.socket, frames: ServerFrames, done: Callable[[], bool]) -> tuple[str, float]:
    """Read the server's frames until ``done()``, a close, EOF or the socket's deadline; how
    it ended and when (``time.monotonic()``)."""
    while True:
        try:
            data = sock.recv(READ_SIZE)
        except TimeoutError:
            return "timeout", time.monotonic()
        except OSError:
            return "reset", time.monotonic()
        if not data:
            return ("EOF" if frames.close_code is None else f"close {frames.close_code}"), (
                time.monotonic()
            )
        frames.feed(data)
        if frames.close_code is not None:
            return f"close {frames.close_code}", time.monotonic()
        if done():
            return "echo", time.monotonic()


def fragments(plan: Plan) -> str:
    key = os.urandom(4)
    data = b"".join(
        [
            bytes([0x02, 0x80]) + key,  # binary, no FIN, empty
            (bytes([0x00, 0x80]) + key) * plan.count,  # empty continuation frames
            client_frame(0x0, b"end"),  # the last continuation, with FIN
        ]
    )
    sock, rest = ws_connect(plan.port, "/echo", deflate=False, timeout=5.0)
    frames = ServerFrames()
    frames.feed(rest)
    ended = threading.Event()
    result: list[tuple[str, float]] = []

    def reader() -> None:
        sock_r = sock.dup()
        sock_r.settimeout(max(0.1, plan.deadline - time.monotonic()))
        with sock_r:
            result.append(watch(sock_r, frames, lambda: frames.messages > 0))
        ended.set()

    with sock:
        started = time.monotonic()
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        sent = flood(plan, sock, data, ended)
        thread.join(max(0.0, plan.deadline - time.monotonic()) + 1)
    how, at = result[0] if result else ("timeout", time.monotonic())
    frames_sent = max(0, min(plan.count, (sent - 6) // 6))
    elapsed = at - started
    rate = f"{frames_sent / elapsed:,.0f} frames/s" if elapsed > 0 else "-"
    return f"{frames_sent:,} of {plan.count:,} frames sent; {how} after {elapsed:.1f} s ({rate})"


def chunks(plan: Plan) -> str:
    body = b"1\r\nx\r\n" * plan.count + b"0\r\n\r\n"
    request = (
        b"POST /drain HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )
    sock = socket.create_connection((HOST, plan.port), timeout=5.0)
    ended = threading.Event()
    with sock:
        started = time.monotonic()
        sender = threading.Thread(target=flood, args=(plan, sock, request, ended), daemon=True)
        sender.start()
        sock_r = sock.dup()
        sock_r.settimeout(max(0.1, plan.deadline - time.monotonic()))
        with sock_r:
            response, how = read_response(sock_r)
        elapsed = time.monotonic() - started
        ended.set()
        sender.join()
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1") or "no response"
    return f"{status} {body[:20].decode('latin-1')!r}{how} after {elapsed:.1f} s"


def read_response(sock: socket.socket) -> tuple[bytes, str]:
    """One response with a ``Content-Length`` (or up to EOF), and how reading it ended:
    ``""``, ``" (EOF)"``, ``" (timeout)"`` or ``" (reset)"``."""
    response = b""
    while True:
        try:
            chunk = sock.recv(READ_SIZE)
        except TimeoutError:
            return response, " (timeout)"
        except OSError:
            return response, " (reset)"
        if not chunk:
            return response, " (EOF)"
        response += chunk
        head, found, body = response.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if found and match and len(body) >= int(match[1]):
            return response, ""


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    attack: str
    parser: str
    baseline_mib: float = 0.0
    peak_mib: float = 0.0
    growth_mib: float = 0.0
    cpu_s: float = 0.0
    canary_requests: int = 0
    canary_p50_ms: float = 0.0
    canary_p99_ms: float = 0.0
    canary_max_ms: float = 0.0
    canary_failures: int = 0
    outcome: str = ""
    load_average: float = 0.0  # the machine's 1-minute load average at the attack's end


def counts(args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    """Each attack's ``(connections, count)``."""
    if args.quick:
        return {
            "deflate-bomb": (1, 0),
            "deflate-bomb-10": (2, 0),
            "queue-fill": (1, 4),
            "fragments": (1, 100_000),
            "fragments-1m": (1, 30_000),
            "chunks": (1, 50_000),
        }
    return {
        "deflate-bomb": (1, 0),
        "deflate-bomb-10": (10, 0),
        "queue-fill": (QUEUE_CONNECTIONS, QUEUE_MESSAGES),
        "fragments": (1, 3_000_000),
        "fragments-1m": (1, 1_000_000),
        "chunks": (1, 1_000_000),
    }


RUNNERS: Final[dict[str, Callable[[Plan], str]]] = {
    "deflate-bomb": deflate_bomb,
    "deflate-bomb-10": deflate_bomb,
    "queue-fill": queue_fill,
    "fragments": fragments,
    "fragments-1m": fragments,
    "chunks": chunks,
}


def wait_quiet(server: Server) -> float:
    """Wait until the server has used less than QUIET_CPU of a core over QUIET_WINDOW (it is
    done with what the attack left it), or QUIET_MAX; when that was (``time.monotonic()``)."""
    give_up = time.monotonic() + QUIET_MAX
    while True:
        before = server.cpu
        time.sleep(QUIET_WINDOW)  # the sampler updates server.cpu meanwhile
        now = time.monotonic()
        if server.cpu - before < QUIET_CPU * QUIET_WINDOW or now >= give_up:
            return now
        if server.process.poll() is not None:
            return now


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run_attack(args: argparse.Namespace, name: str, parser: str) -> Row:
    row = Row(attack=name, parser=parser)
    server = Server(server_command(args, parser, name), server_env(args), Path(args.src).resolve())
    canary_process: Canary | None = None
    try:
        server.wait_listening()
        canary_process = Canary(server.port, args.pin)
        time.sleep(CANARY_WARM_UP)
        server.read()
        baseline = server.rss_peak
        cpu_before = server.cpu
        connections, count = counts(args)[name]
        plan = Plan(
            port=server.port,
            deadline=time.monotonic() + args.timeout,
            duration=args.duration,
            bomb_rate=args.bomb_rate,
            connections=connections,
            count=count,
            alive=lambda: server.process.poll() is None,
        )
        sampler = server.start_sampling(args.rss_cap_mib * 1024)
        started = time.monotonic()
        try:
            row.outcome = RUNNERS[name](plan)
        except (HandshakeError, OSError) as exc:
            row.outcome = f"attack failed: {exc}"
        finished = wait_quiet(server)
        server.stop_sampling(sampler)
        server.read()
        row.load_average = os.getloadavg()[0]
        samples = canary_process.stop()
        canary_process = None
        row.baseline_mib = baseline / 1024
        peak = max(server.rss_peak, server.hwm)
        row.peak_mib = peak / 1024
        row.growth_mib = (peak - baseline) / 1024
        row.cpu_s = server.cpu - cpu_before
        if server.killed_at:
            row.outcome = f"killed at {server.killed_at / MIB:.1f} GiB; {row.outcome}"
        elif server.process.poll() is not None:
            row.outcome = f"server exited {server.process.returncode}; {row.outcome}"
        during = [s for s in samples if started <= s[0] <= finished]
        latencies = [s[1] * 1000 for s in during if s[2] is None]
        row.canary_requests = len(during)
        row.canary_failures = len(during) - len(latencies)
        if latencies:
            row.canary_p50_ms = statistics.median(latencies)
            row.canary_p99_ms = percentile(latencies, 0.99)
            row.canary_max_ms = max(latencies)
    finally:
        if canary_process is not None:
            canary_process.process.kill()
            canary_process.process.wait()
        server.stop()
    return row


def describe_source(src: str) -> str:
    """``src``'s path and, if it is a git checkout, its commit (``path @ abc1234``), marked
    if its ``trio_asgi/`` has changes not committed."""
    path = Path(src).resolve()
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(path)
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain", "--", "trio_asgi"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{path} @ {commit}{' (trio_asgi modified)' if dirty else ''}"


def render(rows: list[Row], command_line: list[str], source: str) -> str:
    lines = [
        "| attack | parser | peak RSS MiB | RSS growth MiB | CPU s | canary p50 / p99 / max ms "
        "| canary failures | outcome |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.attack} | {row.parser} | {row.peak_mib:,.0f} | {row.growth_mib:+,.0f} "
            f"| {row.cpu_s:.1f} | {row.canary_p50_ms:.1f} / {row.canary_p99_ms:.0f} / "
            f"{row.canary_max_ms:.0f} | {row.canary_failures} of {row.canary_requests} "
            f"| {row.outcome.replace('|', '/')} |"
        )
    if rows:
        loads = [row.load_average for row in rows]
        lines += [
            "",
            f"`{shlex.join(['python', 'bench/attacks.py', *command_line])}` (server: {source}) on "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}; "
            "the machine's 1-minute load average at the attacks' "
            f"ends: {min(loads):.1f} to {max(loads):.1f}.",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--attack",
        action="append",
        choices=ATTACKS,
        help="an attack to run (repeatable; default: all)",
    )
    parser.add_argument(
        "--http",
        action="append",
        choices=("h11", "httptools"),
        help="the server's parser (repeatable; default: both, h11 only with --quick)",
    )
    parser.add_argument(
        "--src",
        default=str(REPO_ROOT),
        help="checkout whose trio_asgi the server runs: its PYTHONPATH (default: this one)",
    )
    parser.add_argument(
        "--server-cmd",
        help="the server's command line instead of python -m trio_asgi ...; {python}, "
        "{app_dir}, {http}, {app}, {host} are filled in; it must listen on port 0 and log "
        "'Listening on http://127.0.0.1:PORT' on stderr",
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds the time-bounded attacks last (default: 10, 2 with --quick)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds any one attack may take at most (default: %(default)s)",
    )
    parser.add_argument(
        "--bomb-rate",
        type=float,
        default=6.0,
        help="deflate-bomb frames per second, per connection (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-cap-mib",
        type=int,
        default=6144,
        help="kill the server above this RSS (default: %(default)s MiB)",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the rows to this file as JSON")
    args = parser.parse_args(argv)
    args.attack = args.attack or list(ATTACKS)
    args.http = args.http or (["h11"] if args.quick else ["h11", "httptools"])
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    args.timeout = max(args.timeout, args.duration + 5)
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_canary"]:
        return canary(int(argv[1]))
    args = parse_args(argv)
    if args.pin:
        os.sched_setaffinity(0, {CLIENT_CORE})
    rows: list[Row] = []
    for parser in args.http:
        for name in args.attack:
            print(f"attacks: {name} ({parser})...", file=sys.stderr, flush=True)
            rows.append(run_attack(args, name, parser))
            print(f"attacks:   {rows[-1].outcome}", file=sys.stderr, flush=True)
    print(render(rows, argv, describe_source(args.src)))
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
