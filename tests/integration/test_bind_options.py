"""Tier 3: where ``serve()`` and the command listen: ``Config(bind=..., uds=..., fd=...)``,
systemd socket activation (docs/deploy/'s units), ``--uds`` and a bad ``--bind`` on the
command line.

The listening-socket layer itself (binding, stale files, refused descriptors):
tests/integration/test_listeners.py; the ``--bind`` parser: tests/proto/test_binds.py.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import wsproto
from wsproto.events import AcceptConnection, Request

from trio_asgi import serve
from trio_asgi._types import TCPAddress, UnixAddress

from ..deploy_configs import deploy_config, unit_values
from ..helpers import make_config
from .test_cli import APPS_DIR, EXIT_FAILURE, EXIT_OK, TIMEOUT, ServerProcess, subprocess_env

USAGE_ERROR = 2


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "app.sock")


class Recorder:
    """An app that records every scope and answers ``scope["type"]`` (HTTP) or accepts
    (WebSocket)."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await receive()  # until the client leaves
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})


async def _get(url: str, *, uds: str | None = None) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(uds=uds)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url)


async def test_config_bind_unix_serves_with_the_asgi_server_form_and_removes_the_file(
    sock_path: str,
) -> None:
    app = Recorder()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        config = make_config(bind=["unix:" + sock_path], lifespan="off")

        async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)

        addresses = await nursery.start(run)
        assert addresses == [UnixAddress(sock_path)]
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
        response = await _get("http://localhost/", uds=sock_path)
        assert (response.status_code, response.text) == (200, "hello")
        stop.set()
    [scope] = app.scopes
    assert scope["server"] == (sock_path, None)  # ASGI: [path, None] for a Unix socket
    assert scope["client"] is None
    assert not await trio.Path(sock_path).exists()  # removed at shutdown


async def test_a_websocket_over_a_unix_socket_has_the_same_server_and_client(
    sock_path: str,
) -> None:
    app = Recorder()
    async with trio.open_nursery() as nursery:
        config = make_config(uds=sock_path, lifespan="off", ws_ping_interval=0)
        await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        stream = await trio.open_unix_socket(sock_path)
        async with stream:
            await stream.send_all(client.send(Request(host="localhost", target="/ws")))
            events: list[object] = []
            while not any(isinstance(event, AcceptConnection) for event in events):
                data = await stream.receive_some(65536)
                assert data, "the server closed before accepting"
                client.receive_data(data)
                events += client.events()
        nursery.cancel_scope.cancel()
    [scope] = app.scopes
    assert scope["type"] == "websocket"
    assert (scope["server"], scope["client"]) == ((sock_path, None), None)


async def test_several_binds_at_once_are_all_served_and_logged(
    sock_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    app = Recorder()
    async with trio.open_nursery() as nursery:
        config = make_config(bind=("127.0.0.1:0", "unix:" + sock_path), lifespan="off")
        addresses = await nursery.start(
            lambda task_status: serve(app, config, task_status=task_status)
        )
        tcp, unix = addresses
        assert isinstance(tcp, TCPAddress)
        assert tcp.host == "127.0.0.1"
        assert unix == UnixAddress(sock_path)
        assert (await _get(f"http://127.0.0.1:{tcp.port}/")).text == "hello"
        assert (await _get("http://localhost/", uds=sock_path)).text == "hello"
        nursery.cancel_scope.cancel()
    assert [scope["server"] for scope in app.scopes] == [("127.0.0.1", tcp.port), (sock_path, None)]
    assert f"Listening on http://127.0.0.1:{tcp.port} (press CTRL+C to quit)" in caplog.messages
    assert f"Listening on unix:{sock_path} (press CTRL+C to quit)" in caplog.messages


async def test_config_fd_serves_an_inherited_listening_socket() -> None:
    made = socket.socket()
    made.bind(("127.0.0.1", 0))
    made.listen()
    port = made.getsockname()[1]
    fd = made.detach()  # serve() owns it now, and closes it
    app = Recorder()
    async with trio.open_nursery() as nursery:
        config = make_config(fd=fd, lifespan="off")
        addresses = await nursery.start(
            lambda task_status: serve(app, config, task_status=task_status)
        )
        assert addresses == [TCPAddress("127.0.0.1", port)]
        assert (await _get(f"http://127.0.0.1:{port}/")).text == "hello"
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError, match="Bad file descriptor"):  # closed by serve()
        os.fstat(fd)


class TestTheCommand:
    """``python -m trio_asgi`` in a subprocess: once, not once per parser."""

    @pytest.fixture
    def http_parser(self) -> str:
        return "auto"

    def test_uds_answers_with_its_mode_and_removes_its_file_at_sigterm(
        self, sock_path: str
    ) -> None:
        args = ["--uds", sock_path, "--uds-permissions", "660", "--app-dir", str(APPS_DIR)]
        with ServerProcess(*args, "hello:app") as server:
            line = server.wait_for_line("Listening on ")
            assert line == f"INFO:     Listening on unix:{sock_path} (press CTRL+C to quit)"
            assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o660
            with httpx.Client(transport=httpx.HTTPTransport(uds=sock_path)) as client:
                response = client.get("http://localhost/", timeout=TIMEOUT)
            assert (response.status_code, response.text) == (200, "Hello, world!")
            server.proc.send_signal(signal.SIGTERM)
            assert server.wait_for_exit() == EXIT_OK
        assert not os.path.lexists(sock_path)

    def test_systemd_socket_activation_is_served_and_its_variables_unset(
        self, tmp_path: Path
    ) -> None:
        """docs/deploy/trio-asgi.socket and trio-asgi.service, emulated: the socket's
        ListenStream= (on port 0) is bound and passed as systemd passes it, the service's
        ExecStart= runs with its WorkingDirectory=, with only the app replaced."""
        (tmp_path / "environ_app.py").write_text(
            textwrap.dedent(
                """
                import os

                async def app(scope, receive, send):
                    if scope["type"] == "lifespan":
                        while (message := await receive())["type"] != "lifespan.shutdown":
                            await send({"type": "lifespan.startup.complete"})
                        await send({"type": "lifespan.shutdown.complete"})
                        return
                    seen = [os.environ.get(name, "-") for name in ("LISTEN_PID", "LISTEN_FDS")]
                    await send({"type": "http.response.start", "status": 200, "headers": []})
                    await send({"type": "http.response.body", "body": " ".join(seen).encode()})
                """
            )
        )
        socket_unit = deploy_config(
            "trio-asgi.socket", {"ListenStream=127.0.0.1:8000": "ListenStream=127.0.0.1:0"}
        )
        service = deploy_config(
            "trio-asgi.service",
            {
                "WorkingDirectory=/srv/app\n": f"WorkingDirectory={tmp_path}\n",
                "ExecStart=/srv/app/.venv/bin/trio-asgi ": "ExecStart=trio-asgi ",
                "module:app": "environ_app:app",
            },
        )
        [listen] = unit_values(socket_unit, "ListenStream")
        [workdir] = unit_values(service, "WorkingDirectory")
        [exec_start] = unit_values(service, "ExecStart")
        command, *args = shlex.split(exec_start)
        assert command == "trio-asgi"
        assert not any(
            arg.startswith(("--bind", "--uds", "--fd", "--host", "--port")) for arg in args
        )
        host, _, port_text = listen.rpartition(":")
        # sd_listen_fds(3): the socket is fd 3, LISTEN_PID the pid of the process that
        # serves it, LISTEN_FDNAMES the socket unit's name (no FileDescriptorName=); the
        # launcher keeps its pid across exec, as systemd's child does, and enters
        # WorkingDirectory= first.
        launcher = textwrap.dedent(
            """
            import os, sys
            fd, workdir = int(sys.argv[1]), sys.argv[2]
            if fd != 3:
                os.dup2(fd, 3)
                os.close(fd)
            os.chdir(workdir)
            os.environ.update(
                LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="trio-asgi.socket"
            )
            os.execv(sys.executable, [sys.executable, "-m", "trio_asgi", *sys.argv[3:]])
            """
        )
        with socket.socket() as listening:
            listening.bind((host, int(port_text)))
            listening.listen()
            port = listening.getsockname()[1]
            fd = listening.fileno()
            with ServerProcess(
                str(fd), workdir, *args, python=("-c", launcher), pass_fds=(fd,)
            ) as server:
                named = server.wait_for_line("systemd")
                assert named.endswith("Serving systemd's socket fd 3 (named 'trio-asgi.socket')")
                line = server.wait_for_line("Listening on ")
                assert (
                    line == f"INFO:     Listening on http://127.0.0.1:{port} (press CTRL+C to quit)"
                )
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT)
                assert (response.status_code, response.text) == (200, "- -")  # unset
                server.proc.send_signal(signal.SIGTERM)  # systemctl stop
                assert server.wait_for_exit() == EXIT_OK

    def test_host_given_with_bind_is_replaced_with_a_warning(self) -> None:
        args = ["--host", "0.0.0.0", "--bind", "127.0.0.1:0", "--app-dir", str(APPS_DIR)]
        with ServerProcess(*args, "hello:app") as server:
            warning = server.wait_for_line("ignored")
            assert warning == (
                "WARNING:  --host ignored: --bind, --uds and --fd name where to listen instead"
            )
            assert "Listening on http://127.0.0.1:" in server.wait_for_line("Listening on ")
            server.proc.send_signal(signal.SIGTERM)
            assert server.wait_for_exit() == EXIT_OK

    def test_a_bad_bind_is_a_usage_error_with_the_parsers_message(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "trio_asgi", "--bind", "::1:8000", "hello:app"],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            cwd=APPS_DIR,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == USAGE_ERROR
        assert (
            "Error: bind '::1:8000': an IPv6 address goes in brackets, as in [::1]:8000; "
            "use HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
        ) in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_path_that_is_no_socket_exits_1_with_the_listen_error(self, sock_path: str) -> None:
        Path(sock_path).write_text("not a socket")
        with ServerProcess("--uds", sock_path, "--app-dir", str(APPS_DIR), "hello:app") as server:
            assert server.wait_for_exit() == EXIT_FAILURE
        assert server.lines[-1] == (
            f"Error: could not listen: unix:{sock_path} exists and is not a socket "
            "(a regular file); remove it or choose another path"
        )
        assert Path(sock_path).read_text() == "not a socket"

    def test_uds_permissions_that_are_not_octal_are_a_usage_error(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "trio_asgi", "--uds", "x.sock", "--uds-permissions", "999"],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == USAGE_ERROR
        assert "'999' is not an octal mode such as 660 or 0o660" in result.stderr
