"""Tier 3 under stress: many clients, hostile clients, and the limits that protect the server.

- SIGTERM under load: ``python -m trio_asgi`` in a subprocess, 200 concurrent keep-alive
  clients looping requests, SIGTERM mid-load. No accepted request may be cut, the process
  exits 0 within the graceful timeout, and new connections are refused.
- Slowloris: a client trickling a request head a byte at a time is answered 408 at
  ``request_header_timeout`` while another client is served all along.
- ``max_connections``: one connection too many gets 503; a freed slot is reused.
- EMFILE: a server subprocess with a low ``RLIMIT_NOFILE`` runs out of descriptors, stays up
  (trio's accept loop logs and retries), and serves again once descriptors are free.

Subprocesses are driven from trio: their stderr is read line by line by a task, and every
wait ("Listening on", a log line, the exit) is bounded. Nothing sleeps to wait for something;
the trickling client's pacing is part of its scenario, and even that wakes early once the
server has cut it off.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h11
import pytest
import trio
import trio.testing

import trio_asgi

from .. import helpers
from ..apps.load import HELD, RECORD_VARIABLE
from ..helpers import H11Client, hello_app, parse_responses, read_until_eof, start_server

APPS_DIR = Path(__file__).parent.parent / "apps"
REPO_ROOT = Path(trio_asgi.__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: Bound on each test; a passing test takes a few seconds at most.
TIMEOUT = 15.0


# ---------------------------------------------------------------------------------------------
# Tools: a server subprocess read from trio, raw client connections
# ---------------------------------------------------------------------------------------------


class CLIServer:
    """``python [PYTHON_ARGS] -m trio_asgi ARGS`` with its stderr read line by line by a task.

    Open with :meth:`open`; on the way out the process is killed if it still runs, and its
    stderr pipe is read to the end and closed.
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._seen = 0  # lines before this index were matched or skipped by wait_for_line
        self._changed = trio.Event()
        self._eof = trio.Event()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        nursery: trio.Nursery,
        *args: str,
        env: dict[str, str] | None = None,
        python_args: Sequence[str] = ("-m", "trio_asgi"),
    ) -> AsyncIterator[CLIServer]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_ASGI_")}
        environ["TRIO_ASGI_HTTP"] = helpers.HTTP_PARSER  # the parser under test (conftest.py)
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), environ.get("PYTHONPATH")])
        )
        environ.update(env or {})
        process = await trio.lowlevel.open_process(
            [sys.executable, *python_args, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environ,
        )
        server = cls(process)
        nursery.start_soon(server._read_stderr)
        try:
            yield server
        finally:
            with trio.CancelScope(shield=True), trio.fail_after(TIMEOUT):
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await server._eof.wait()
                assert process.stderr is not None
                await process.stderr.aclose()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        pending = b""
        async for chunk in self.process.stderr:
            *complete, pending = (pending + chunk).split(b"\n")
            self._add(complete)
        self._add([pending] if pending else [])
        self._eof.set()
        self._changed.set()

    def _add(self, raw_lines: list[bytes]) -> None:
        if raw_lines:
            self.lines += [line.decode("utf-8", "replace") for line in raw_lines]
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for_line(self, needle: str) -> str:
        """The first line not matched yet that contains ``needle``."""
        with trio.fail_after(TIMEOUT):
            while True:
                for index in range(self._seen, len(self.lines)):
                    if needle in self.lines[index]:
                        self._seen = index + 1
                        return self.lines[index]
                if self._eof.is_set():
                    raise AssertionError(
                        f"no stderr line containing {needle!r} (exit status "
                        f"{self.process.returncode}); stderr: {self.lines}"
                    )
                await self._changed.wait()

    async def wait_for_port(self) -> int:
        line = await self.wait_for_line("Listening on http://")
        return int(line.rsplit(":", 1)[1].split()[0])

    async def wait_for_exit(self) -> int:
        """Wait for the process to end and its stderr to be read; the exit status."""
        with trio.fail_after(TIMEOUT):
            status = await self.process.wait()
            await self._eof.wait()
        return status


async def connect(port: int) -> trio.SocketStream:
    """A raw TCP connection to 127.0.0.1:``port`` (no resolver, so no worker thread)."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def assert_refused(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):  # noqa: PT012 - the stream must not leak
        stream = await connect(port)
        await stream.aclose()


# ---------------------------------------------------------------------------------------------
# SIGTERM under load
# ---------------------------------------------------------------------------------------------

CLIENTS = 200
#: Responses completed before SIGTERM is sent, so the load is well under way.
SIGTERM_AFTER = 600
GRACEFUL_TIMEOUT = 5.0
EXIT_MARGIN = 3.0


@dataclass
class Outcome:
    """What became of one request, seen from the client.

    ``kind`` is one of:

    - ``"ok"``: a complete ``200`` response whose body is the request's path;
    - ``"send_failed"``: sending the request raised (the connection was reset);
    - ``"no_response"``: sent, then EOF or a reset before a single response byte;
    - ``"partial"``: EOF, a reset or invalid bytes after part of a response;
    - ``"wrong"``: a complete response, but not ``200`` with the expected body.
    """

    kind: str
    sent_at: float
    done_at: float = math.nan  # when the response ended or the failure was seen
    detail: str = ""
    connection_close: bool = False


@dataclass
class Load:
    port: int
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    ok: int = 0
    refused_clients: int = 0
    sigterm_at: float = math.inf
    under_way: trio.Event = field(default_factory=trio.Event)

    async def client(self, number: int) -> None:
        """Loop requests on keep-alive connections; reconnect when one ends; stop once a
        connection is refused (the server has stopped listening)."""
        sequence = 0
        while True:
            try:
                stream = await connect(self.port)
            except ConnectionRefusedError:
                self.refused_clients += 1
                return
            async with stream:
                conn = h11.Connection(h11.CLIENT)
                while conn.our_state is h11.IDLE:
                    sequence += 1
                    path = f"/c{number}/r{sequence}"
                    if not await self._request(stream, conn, path):
                        break
                    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                        conn.start_next_cycle()

    async def _request(self, stream: trio.SocketStream, conn: h11.Connection, path: str) -> bool:
        """One request; True if it got a whole response and the connection may be reused."""
        try:
            return await self._exchange(stream, conn, path)
        finally:
            self.outcomes[path].done_at = trio.current_time()

    async def _exchange(self, stream: trio.SocketStream, conn: h11.Connection, path: str) -> bool:
        outcome = self.outcomes[path] = Outcome("send_failed", trio.current_time())
        data = conn.send(h11.Request(method="GET", target=path, headers=[("host", "test")]))
        data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        try:
            await stream.send_all(data)
        except trio.BrokenResourceError as exc:
            outcome.detail = repr(exc.__cause__)
            return False
        received = 0
        status = 0
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                outcome.kind = "partial" if received else "no_response"
                outcome.detail = f"{exc} after {received} bytes"
                return False
            if event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError as exc:
                    outcome.kind = "partial" if received else "no_response"
                    outcome.detail = f"{exc.__cause__!r} after {received} bytes"
                    return False
                received += len(chunk)
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
                outcome.connection_close = (b"connection", b"close") in event.headers
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if status == 200 and bytes(body) == path.encode():
                    outcome.kind = "ok"
                    self.ok += 1
                    if self.ok >= SIGTERM_AFTER:
                        self.under_way.set()
                    return True
                outcome.kind = "wrong"
                outcome.detail = f"{status} {bytes(body)[:60]!r}"
                return False
            else:  # ConnectionClosed: EOF where a response should begin
                outcome.kind = "partial" if received else "no_response"
                outcome.detail = f"{event!r} after {received} bytes"
                return False


async def test_sigterm_under_load_cuts_no_accepted_request(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """SIGTERM while 200 clients loop requests on keep-alive connections.

    A request is *accepted* when the app has started it: ``tests/apps/load.py`` notes every
    request it starts and writes the list out at lifespan shutdown, which runs only after the
    last connection closed. A request the server never read (sent on a keep-alive connection
    in the instant the server closed it as idle, or queued on a listening socket as it
    closed) is not accepted: its client may see a reset or EOF before any response byte, which
    is the race RFC 9112 section 9.3.1 leaves to clients. So:

    - every accepted request gets a complete ``200`` with its own body: no EOF, reset or
      truncation after the server took it;
    - no request at all sees part of a response, and none fails before SIGTERM;
    - load was in flight: some request sent before SIGTERM completes after it;
    - new connections are refused once the listeners close (checked while a held request
      still runs) and after exit; the process exits 0 within ``--graceful-timeout`` plus a
      margin, without a traceback or a forced cancel.
    """
    record = tmp_path / "started.txt"
    args = [
        "--port",
        "0",
        "--no-access-log",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--app-dir",
        str(APPS_DIR),
        "load:app",
    ]
    with trio.fail_after(TIMEOUT):
        async with CLIServer.open(nursery, *args, env={RECORD_VARIABLE: str(record)}) as server:
            port = await server.wait_for_port()
            load = Load(port)
            # One request held open across the shutdown: half its body is withheld.
            held = await connect(port)
            held_client = H11Client(held)
            head = h11.Request(
                method="POST",
                target="/held",
                headers=[("host", "test"), ("content-length", "10")],
            )
            head_bytes = held_client.conn.send(head) or b""
            await held.send_all(
                head_bytes + (held_client.conn.send(h11.Data(data=b"12345")) or b"")
            )
            await server.wait_for_line(f"{HELD} /held")

            async with trio.open_nursery() as clients:
                for number in range(CLIENTS):
                    clients.start_soon(load.client, number)
                await load.under_way.wait()
                load.sigterm_at = trio.current_time()
                server.process.send_signal(signal.SIGTERM)
                # Logged once the listeners are closed, while the held request still runs.
                await server.wait_for_line("Waiting for ")
                await assert_refused(port)
                last = held_client.conn.send(h11.Data(data=b"67890"))
                await held.send_all(last + held_client.conn.send(h11.EndOfMessage()))
                held_response = await held_client.read_response()
                await held.aclose()
                # The clients stop once a reconnection is refused.
            status = await server.wait_for_exit()
            exited_after = trio.current_time() - load.sigterm_at
        await assert_refused(port)

    assert status == 0, server.lines
    assert exited_after < GRACEFUL_TIMEOUT + EXIT_MARGIN
    assert not any("Traceback" in line or "ERROR" in line for line in server.lines), server.lines
    assert not any("timed out" in line or "Forced" in line for line in server.lines)
    assert "INFO:     Server stopped" in server.lines

    assert held_response.status == 200
    assert held_response.body == b"/held"
    assert held_response.header(b"connection") == b"close"

    accepted = set(record.read_text().splitlines())
    accepted.discard("/held")
    outcomes = load.outcomes
    kinds = Counter(outcome.kind for outcome in outcomes.values())
    cut = {path: o for path, o in outcomes.items() if path in accepted and o.kind != "ok"}
    assert not cut, f"accepted requests cut short: {dict(list(cut.items())[:5])}; {kinds}"
    broken = {p: o for p, o in outcomes.items() if o.kind in ("partial", "wrong")}
    assert not broken, f"broken responses: {dict(list(broken.items())[:5])}; {kinds}"
    ok = {path for path, outcome in outcomes.items() if outcome.kind == "ok"}
    assert ok == accepted  # and so every failure was a request the server never started
    early = {p: o for p, o in outcomes.items() if o.kind != "ok" and o.done_at < load.sigterm_at}
    assert not early, f"requests failed before SIGTERM: {dict(list(early.items())[:5])}"
    assert len(ok) >= SIGTERM_AFTER
    in_flight = [o for o in outcomes.values() if o.sent_at < load.sigterm_at < o.done_at]
    assert in_flight, f"no request was in flight at SIGTERM; {kinds}"
    assert load.refused_clients == CLIENTS


# ---------------------------------------------------------------------------------------------
# Slowloris
# ---------------------------------------------------------------------------------------------

HEADER_TIMEOUT = 1.0
TRICKLE = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"[:20]  # never a whole head
TRICKLE_INTERVAL = 0.3


async def test_slowloris_gets_408_at_the_deadline_while_others_are_served(
    nursery: trio.Nursery,
) -> None:
    server = await start_server(nursery, hello_app, request_header_timeout=HEADER_TIMEOUT)
    cut_off = trio.Event()
    received = bytearray()
    cut_off_at = math.inf

    async def read_slow(stream: trio.SocketStream) -> None:
        nonlocal cut_off_at
        received.extend(await read_until_eof(stream))
        cut_off_at = trio.current_time()
        cut_off.set()

    with trio.fail_after(TIMEOUT):
        slow = await connect(server.port)
        good = await connect(server.port)
        good_client = H11Client(good)
        served_meanwhile = 0
        trickled = 0
        async with slow, good, trio.open_nursery() as inner:
            inner.start_soon(read_slow, slow)
            first_byte_at = trio.current_time()
            for byte in TRICKLE:
                if cut_off.is_set():
                    break
                await slow.send_all(bytes([byte]))
                trickled += 1
                response = await good_client.request()
                assert (response.status, response.body) == (200, b"Hello, world!")
                served_meanwhile += 1
                with trio.move_on_after(TRICKLE_INTERVAL):  # pacing; wakes early once cut off
                    await cut_off.wait()
            await cut_off.wait()
            after = await good_client.request()

    [answer] = parse_responses(bytes(received))
    assert answer.status == 408
    assert answer.header(b"connection") == b"close"
    assert trickled < len(TRICKLE)
    assert HEADER_TIMEOUT - 0.05 <= cut_off_at - first_byte_at < HEADER_TIMEOUT + 1.0
    assert served_meanwhile >= 3
    assert after.status == 200


# ---------------------------------------------------------------------------------------------
# max_connections
# ---------------------------------------------------------------------------------------------


async def test_max_connections_answers_503_beyond_the_limit(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello_app, max_connections=2)
    with trio.fail_after(TIMEOUT):
        first, second = await connect(server.port), await connect(server.port)
        async with second:
            clients = [H11Client(first), H11Client(second)]
            for client in clients:
                assert (await client.request()).status == 200

            # A third connection, with its request already sent: 503, then the server's EOF.
            third = await connect(server.port)
            async with third:
                await third.send_all(H11Client(third).request_bytes())
                [refused] = parse_responses(await read_until_eof(third))
            assert refused.status == 503
            assert refused.header(b"connection") == b"close"
            # The first two are still served.
            for client in clients:
                assert (await client.request()).status == 200

            # The first one leaves: half-close, read the server's EOF, let it finish its side.
            await first.send_eof()
            assert await read_until_eof(first) == b""
            await first.aclose()
            await trio.testing.wait_all_tasks_blocked()
            fourth = await connect(server.port)
            async with fourth:
                response = await H11Client(fourth).request()
            assert (response.status, response.body) == (200, b"Hello, world!")
            assert (await clients[1].request()).status == 200


# ---------------------------------------------------------------------------------------------
# EMFILE
# ---------------------------------------------------------------------------------------------

FD_LIMIT = 64
#: ``python -c`` this, then the CLI's arguments: the CLI with a soft RLIMIT_NOFILE of FD_LIMIT.
LOW_FD_LIMIT = (
    "import resource, runpy; "
    "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, hard)); "
    "runpy.run_module('trio_asgi', run_name='__main__', alter_sys=True)"
)


async def test_out_of_descriptors_the_server_backs_off_and_recovers(
    nursery: trio.Nursery,
) -> None:
    args = ["--port", "0", "--no-access-log", "--app-dir", str(APPS_DIR), "hello:app"]
    with trio.fail_after(TIMEOUT):
        async with CLIServer.open(nursery, *args, python_args=("-c", LOW_FD_LIMIT)) as server:
            port = await server.wait_for_port()
            first = await connect(port)
            first_client = H11Client(first)
            assert (await first_client.request()).status == 200
            # More connections than the server has descriptors left.
            crowd: list[trio.SocketStream] = []
            try:
                for _ in range(FD_LIMIT):
                    crowd.append(await connect(port))
                line = await server.wait_for_line("accept returned EMFILE")
                assert "retrying" in line
                # Still up: a connection it accepted before is served.
                assert server.process.returncode is None
                assert (await first_client.request()).status == 200
            finally:
                for stream in crowd:
                    await stream.aclose()
            await first.aclose()
            # Descriptors are free again: a new connection is accepted and served.
            fresh = await connect(port)
            async with fresh:
                response = await H11Client(fresh).request()
            assert (response.status, response.body) == (200, b"Hello, world!")
            server.process.send_signal(signal.SIGTERM)
            assert await server.wait_for_exit() == 0
    assert not any("Unexpected error" in line for line in server.lines), server.lines
