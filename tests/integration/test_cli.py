"""Tier 3: the ``trio-asgi`` command end to end, ``python -m trio_asgi`` in a subprocess.

A real subprocess on port 0, driven over loopback and with real signals. The port is read
from the "Listening on" line on stderr. Every wait is bounded; every process is killed on
the way out. The command in process (options, exit statuses, logging, signals with a fake
``serve``): tests/proto/test_cli.py.
"""

from __future__ import annotations

import errno
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import h11
import httpx
import pytest

import trio_asgi

APPS_DIR = Path(__file__).parent.parent / "apps"
REPO_ROOT = Path(trio_asgi.__file__).resolve().parent.parent
#: Bound on every wait for the server subprocess: a line on stderr, an HTTP exchange, an exit.
TIMEOUT = 15.0

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_STARTUP_FAILURE = 3
EXIT_SHUTDOWN_FAILURE = 4


# ---------------------------------------------------------------------------------------------
# End to end: python -m trio_asgi in a subprocess
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def http_parser() -> str:
    """Once, not once per parser: these tests run the command, whose parser is its own
    ``--http`` option (the default here), not the shared tools' ``helpers.HTTP_PARSER``."""
    return "auto"


LISTENING = re.compile(
    r"Listening on http://(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:/]+)):(?P<port>\d+)"
)
GRACEFUL = "Shutting down gracefully (press CTRL+C again to force)"


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without TRIO_ASGI_* and with trio_asgi importable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_ASGI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def port_of(listening_line: str) -> int:
    match = LISTENING.search(listening_line)
    assert match is not None, listening_line
    return int(match["port"])


class ServerProcess:
    """``python -m trio_asgi ARGS`` with its stderr read line by line by a thread.

    ``python=("-c", code)`` runs ``python -c code ARGS`` instead; ``pass_fds`` are inherited
    (``subprocess.Popen``'s). Use as a context manager: on exit the process is killed if it
    is still running.
    """

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        python: tuple[str, ...] = ("-m", "trio_asgi"),
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        environ = subprocess_env(env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self.proc = subprocess.Popen(
            [sys.executable, *python, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            pass_fds=pass_fds,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        finally:
            self._reader.join(timeout=TIMEOUT)
            assert self.proc.stderr is not None
            self.proc.stderr.close()

    def wait_for_line(self, needle: str) -> str:
        """Return the first stderr line not read yet that contains ``needle``."""
        deadline = time.monotonic() + TIMEOUT
        while not self._eof:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if line is None:
                self._eof = True
                break
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(
            f"no stderr line containing {needle!r} within {TIMEOUT}s "
            f"(exit status {self.proc.poll()}); stderr so far: {self.lines}"
        )

    def wait_for_port(self) -> int:
        """Wait for the "Listening on http://HOST:PORT" line and return PORT."""
        return port_of(self.wait_for_line("Listening on http://"))

    def wait_for_exit(self) -> int:
        """Wait for the process to end, read the rest of stderr, return the exit status."""
        status = self.proc.wait(timeout=TIMEOUT)
        self._reader.join(timeout=TIMEOUT)
        while not self._eof:
            line = self._queue.get_nowait()
            if line is None:
                self._eof = True
            else:
                self.lines.append(line)
        return status


def exchange(port: int, client: h11.Connection, sock: socket.socket) -> tuple[int, bytes]:
    """Read one whole response with h11; return its status and body."""
    status, body = None, b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert status is not None
            return status, body
        else:
            raise AssertionError(f"unexpected {event!r} from the server on port {port}")


def test_e2e_serves_hello_world_then_sigterm_exits_0() -> None:
    with ServerProcess("--port", "0", "--app-dir", str(APPS_DIR), "hello:app") as server:
        line = server.wait_for_line("Listening on http://")
        assert line.startswith("INFO:     Listening on http://127.0.0.1:")
        assert line.endswith(" (press CTRL+C to quit)")
        port = port_of(line)
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.text == "Hello, world!"
        # The access log reaches stderr through the CLI's handler, at INFO.
        access = server.wait_for_line('"GET / HTTP/1.1" 200')
        assert access.startswith("INFO:     127.0.0.1:")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for_exit() == EXIT_OK
        assert f"INFO:     {GRACEFUL}" in server.lines
        assert not any("Traceback" in line for line in server.lines)


def test_e2e_port_and_app_from_environment() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    env = {"TRIO_ASGI_PORT": str(free_port), "TRIO_ASGI_APP": "hello:app"}
    with ServerProcess("--app-dir", str(APPS_DIR), env=env) as server:
        assert server.wait_for_port() == free_port
        response = httpx.get(f"http://127.0.0.1:{free_port}/", timeout=TIMEOUT)
        assert response.text == "Hello, world!"
        server.proc.send_signal(signal.SIGINT)
        assert server.wait_for_exit() == EXIT_OK


def test_e2e_sigterm_lets_the_request_in_flight_finish() -> None:
    with ServerProcess("--port", "0", "--app-dir", str(APPS_DIR), "slow:app") as server:
        port = server.wait_for_port()
        client = h11.Connection(h11.CLIENT)
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            head = h11.Request(
                method="POST",
                target="/upload",
                headers=[("Host", f"127.0.0.1:{port}"), ("Content-Length", "10")],
            )
            sock.sendall(client.send(head) + client.send(h11.Data(data=b"12345")))
            server.wait_for_line("slow: request started /upload")

            server.proc.send_signal(signal.SIGTERM)
            server.wait_for_line(GRACEFUL)
            # The app is still waiting for the rest of the body: the request is in flight.
            sock.sendall(client.send(h11.Data(data=b"67890")) + client.send(h11.EndOfMessage()))
            assert exchange(port, client, sock) == (200, b"received 10 bytes")
        assert server.wait_for_exit() == EXIT_OK
        assert "WARNING:  Forced shutdown" not in server.lines


def test_e2e_second_sigint_forces_exit_1() -> None:
    args = ["--port", "0", "--graceful-timeout", "inf", "--app-dir", str(APPS_DIR), "slow:app"]
    with ServerProcess(*args) as server:
        port = server.wait_for_port()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            # Promise a body and never send it: the request stays in flight for ever.
            sock.sendall(b"POST /stuck HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345")
            server.wait_for_line("slow: request started /stuck")
            server.proc.send_signal(signal.SIGINT)
            server.wait_for_line(GRACEFUL)
            server.proc.send_signal(signal.SIGINT)
            assert server.wait_for_exit() == EXIT_FAILURE
        assert "WARNING:  Forced shutdown" in server.lines
        assert not any("Traceback" in line for line in server.lines)


def test_e2e_import_error_exits_1_with_one_line() -> None:
    with ServerProcess("--port", "0", "--app-dir", str(APPS_DIR), "hello:nope") as server:
        assert server.wait_for_exit() == EXIT_FAILURE
        assert server.lines == ["Error: module 'hello' has no attribute 'nope'"]


def test_e2e_failing_lifespan_startup_exits_3() -> None:
    args = ["--port", "0", "--app-dir", str(APPS_DIR), "failing_startup:app"]
    with ServerProcess(*args) as server:
        assert server.wait_for_exit() == EXIT_STARTUP_FAILURE
        assert server.lines[-1] == "Error: application startup failed: database is unreachable"
        assert not any("Traceback" in line for line in server.lines)
        assert not any("Listening on" in line for line in server.lines)


def test_e2e_port_in_use_exits_1_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--port", str(port), "--app-dir", str(APPS_DIR), "hello:app"]
        with ServerProcess(*args) as server:
            assert server.wait_for_exit() == EXIT_FAILURE
    in_use = os.strerror(errno.EADDRINUSE)
    assert server.lines[-1].startswith(f"Error: could not listen on 127.0.0.1:{port}: ")
    assert server.lines[-1].endswith(in_use)
    assert not any("Traceback" in line for line in server.lines)


def test_main_module_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_asgi", "--version"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == EXIT_OK
    assert result.stdout.startswith(f"trio-asgi {trio_asgi.__version__} (trio ")
    assert result.stderr == ""


def test_e2e_sigterm_during_a_hanging_startup_exits_3_at_once() -> None:
    """A signal during lifespan startup (here one that would hang for ever) cancels it: the
    process exits promptly with the startup-failure status, having served nothing."""
    args = ["--port", "0", "--lifespan-startup-timeout", "inf"]
    with ServerProcess(*args, "--app-dir", str(APPS_DIR), "hanging_startup:app") as server:
        server.wait_for_line("Waiting for application startup.")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for_exit() == EXIT_STARTUP_FAILURE
        assert (
            "Error: application startup failed: shutdown was requested before startup "
            "completed" in server.lines
        )
        assert not any("Listening on" in line for line in server.lines)
        assert not any("Traceback" in line for line in server.lines)


def test_e2e_failing_lifespan_shutdown_exits_4() -> None:
    with ServerProcess("--port", "0", "--app-dir", str(APPS_DIR), "failing_shutdown:app") as server:
        port = server.wait_for_port()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT).status_code == 204
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for_exit() == EXIT_SHUTDOWN_FAILURE
        assert (
            "Error: application shutdown failed: RuntimeError: could not flush the queue"
            in server.lines
        )


# ---------------------------------------------------------------------------------------------
# trio_asgi.run() and trio.run(serve, app) from a script, in a subprocess
# ---------------------------------------------------------------------------------------------

RUN_HELLO = """
import sys
import trio_asgi
from hello import app

trio_asgi.run(app, port=0)
print("run returned", file=sys.stderr)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_serves_logs_where_it_listens_and_shuts_down_gracefully(signum: int) -> None:
    env = {"PYTHONPATH": str(APPS_DIR)}
    with ServerProcess(env=env, python=("-c", RUN_HELLO)) as server:
        line = server.wait_for_line("Listening on http://")
        assert line.startswith("INFO:     Listening on http://127.0.0.1:")
        port = port_of(line)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT).text == "Hello, world!"
        server.wait_for_line('"GET / HTTP/1.1" 200')  # the access log, as the command's
        server.proc.send_signal(signum)
        assert server.wait_for_exit() == EXIT_OK
    assert f"INFO:     {GRACEFUL}" in server.lines
    assert "INFO:     Server stopped" in server.lines
    assert server.lines[-1] == "run returned"  # it returned; it did not exit the process
    assert not any("Traceback" in line for line in server.lines)


def test_run_refuses_a_bad_setting_before_anything_starts() -> None:
    code = RUN_HELLO.replace("port=0", "port=0, graceful_timeout=-1")
    with ServerProcess(env={"PYTHONPATH": str(APPS_DIR)}, python=("-c", code)) as server:
        assert server.wait_for_exit() == EXIT_FAILURE
    assert server.lines[-1].startswith("trio_asgi._errors.ConfigError: graceful_timeout ")
    assert not any("Waiting for application startup" in line for line in server.lines)
    assert not any("Listening on" in line for line in server.lines)


TRIO_RUN_SERVE = """
import logging
import signal
import trio
import trio_asgi
from hello import app

# A shell's background job starts with SIGINT ignored; restore Python's own handler, so
# that SIGINT is CTRL+C as in a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)
logging.basicConfig(level=logging.INFO)  # only to see the "Listening on" line
trio.run(trio_asgi.serve, app, trio_asgi.Config(port=0))
"""


def test_keyboard_interrupt_through_trio_run_serve_is_one_plain_exception() -> None:
    with ServerProcess(env={"PYTHONPATH": str(APPS_DIR)}, python=("-c", TRIO_RUN_SERVE)) as server:
        port = server.wait_for_port()
        # Answered: the accept loops run. (A SIGINT in the moment between the "Listening on"
        # line and their first step ends trio.run before they ever ran: Python then warns
        # that their coroutines were never awaited.)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT).status_code == 200
        server.proc.send_signal(signal.SIGINT)
        status = server.wait_for_exit()
    # What Python gives an uncaught KeyboardInterrupt: killed by SIGINT.
    assert status == -signal.SIGINT, server.lines
    traceback_at = server.lines.index("Traceback (most recent call last):")
    tail = server.lines[traceback_at:]
    assert tail[-1] == "KeyboardInterrupt"
    assert sum("Traceback" in line for line in server.lines) == 1
    assert not any("ExceptionGroup" in line or "sub-exception" in line for line in tail)


def test_e2e_starlettes_failing_startup_prints_its_traceback_once() -> None:
    args = ["--port", "0", "--app-dir", str(APPS_DIR), "starlette_failing_startup:app"]
    with ServerProcess(*args) as server:
        assert server.wait_for_exit() == EXIT_STARTUP_FAILURE
    assert sum("Traceback (most recent call last)" in line for line in server.lines) == 1
    assert sum(line == "RuntimeError: database is unreachable" for line in server.lines) == 1
    assert server.lines[-1] == (
        "Error: application startup failed: RuntimeError: database is unreachable"
    )


def test_e2e_a_file_path_gets_the_command_that_serves_it() -> None:
    with ServerProcess("--port", "0", str(APPS_DIR / "hello.py")) as server:
        assert server.wait_for_exit() == EXIT_FAILURE
    [line] = server.lines
    suggestion = line.partition(": trio-asgi ")[2]
    assert suggestion == f"--app-dir {shlex.quote(str(APPS_DIR))} hello:app"
    with ServerProcess("--port", "0", *shlex.split(suggestion)) as server:
        port = server.wait_for_port()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT).text == "Hello, world!"
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for_exit() == EXIT_OK


def test_readme_embedding_starts_with_trio_asgi_run_and_it_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    embedding = readme[readme.index("## Embedding\n") :]
    snippet = re.search(r"```python\n(.+?)\n```", embedding, re.S)
    assert snippet is not None
    code = snippet.group(1)
    assert "trio_asgi.run(app, port=8000)" in code
    with ServerProcess(python=("-c", code.replace("port=8000", "port=0"))) as server:
        port = server.wait_for_port()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT).text == "Hello, world!"
        server.proc.send_signal(signal.SIGINT)
        assert server.wait_for_exit() == EXIT_OK
    assert "INFO:     Server stopped" in server.lines


def test_run_forced_by_a_second_signal_raises_keyboard_interrupt() -> None:
    code = (
        "import trio_asgi\nfrom slow import app\n"
        "trio_asgi.run(app, port=0, graceful_timeout=float('inf'))\n"
    )
    with ServerProcess(env={"PYTHONPATH": str(APPS_DIR)}, python=("-c", code)) as server:
        port = server.wait_for_port()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            # Promise a body and never send it: the request stays in flight for ever.
            sock.sendall(b"POST /stuck HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345")
            server.wait_for_line("slow: request started /stuck")
            server.proc.send_signal(signal.SIGINT)
            server.wait_for_line(GRACEFUL)
            server.proc.send_signal(signal.SIGINT)
            status = server.wait_for_exit()
    assert "WARNING:  Forced shutdown" in server.lines
    assert server.lines[-1] == "KeyboardInterrupt: forced shutdown"
    assert status == -signal.SIGINT  # what Python gives an uncaught KeyboardInterrupt
