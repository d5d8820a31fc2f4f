"""Tier 3: ASGI 2 apps served end to end, the interface decision, and apps that fit none.

The real server on loopback with httpx (``start_server``), and the command in a subprocess
(``python -m trio_asgi``, as tests/integration/test_cli.py runs it) for examples/asgi2_app.py
and for the one-line refusal of an app that fits no interface.
"""

from __future__ import annotations

import logging
import shlex
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_asgi import AppImportError, Config, serve

from ..helpers import start_server
from .test_cli import EXIT_FAILURE, EXIT_OK, REPO_ROOT, ServerProcess

EXAMPLES = REPO_ROOT / "examples"
DECISION = (
    "Serving the app as ASGI 2: a class whose instances take scope, then receive and send; "
    "--interface forces another"
)


class ScopeRecorder:
    """An ASGI 2 class-style app: answers every request with 200 and keeps each scope."""

    scopes: list[dict[str, Any]]

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        ScopeRecorder.scopes.append(scope)

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.scope["state"]["greeting"] = "set at startup"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    ScopeRecorder.shutdown_seen = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"{self.scope['asgi']['version']} {self.scope['state']['greeting']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    shutdown_seen = False


@pytest.fixture
def recorder() -> type[ScopeRecorder]:
    ScopeRecorder.scopes = []
    ScopeRecorder.shutdown_seen = False
    return ScopeRecorder


def decisions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trio_asgi.error" and r.getMessage().startswith("Serving the app as")
    ]


async def test_asgi2_class_is_served_with_version_2_and_lifespan(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, recorder: type[ScopeRecorder]
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    server = await start_server(nursery, recorder, lifespan="on")  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        first = await http.get(server.url + "/a")
        second = await http.get(server.url + "/b")
    assert (first.status_code, first.text) == (200, "2.0 set at startup")
    assert second.text == "2.0 set at startup"
    await server.shutdown()
    assert recorder.shutdown_seen
    lifespan, *requests = recorder.scopes
    assert lifespan["type"] == "lifespan"
    assert lifespan["asgi"] == {"version": "2.0", "spec_version": "2.0"}
    assert [scope["path"] for scope in requests] == ["/a", "/b"]
    assert all(scope["asgi"]["version"] == "2.0" for scope in requests)
    assert decisions(caplog) == [DECISION]  # once per serve(), not per request


async def test_asgi2_function_style_is_served(nursery: trio.Nursery) -> None:
    def app(scope: dict[str, Any]) -> Any:
        async def instance(receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send(
                    {"type": "http.response.body", "body": scope["asgi"]["version"].encode()}
                )

        return instance

    server = await start_server(nursery, app)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.text == "2.0"
    await server.shutdown()


async def test_interface_asgi2_serves_without_detecting(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, recorder: type[ScopeRecorder]
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    server = await start_server(nursery, recorder, interface="asgi2")  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.text == "2.0 set at startup"
    await server.shutdown()
    assert decisions(caplog) == []


async def test_forcing_asgi3_on_an_asgi2_app_answers_500_with_the_typeerror_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, recorder: type[ScopeRecorder]
) -> None:
    """What a wrong ``--interface`` gives: the class is called with three arguments, so every
    request is a 500 with the TypeError logged, and lifespan ("auto") is skipped."""
    server = await start_server(nursery, recorder, interface="asgi3")  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.status_code == 500
    await server.shutdown()
    assert recorder.scopes == []  # never constructed: ScopeRecorder(scope, receive, send) fails
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert errors
    exc_info = errors[-1].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], TypeError)
    assert decisions(caplog) == []


async def test_an_app_that_fits_no_interface_is_refused_before_binding() -> None:
    def app(scope: Any, receive: Any, send: Any) -> None:  # sync: no coroutine to await
        pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    with (
        trio.fail_after(5),  # without the refusal it would serve
        pytest.raises(AppImportError, match="--interface asgi3 serves it as that"),
    ):
        await serve(app, Config(port=0), listeners=listeners)  # type: ignore[arg-type]
    # serve() owns the listeners it is given: closed, refused app or not.
    with pytest.raises(trio.ClosedResourceError):
        await listeners[0].accept()


# -- the command --------------------------------------------------------------------------------


def command_of(example: Path) -> list[str]:
    """The ``trio-asgi ...`` command written at the top of an example, as arguments."""
    for line in example.read_text().splitlines():
        if line.strip().startswith("trio-asgi "):
            return shlex.split(line.strip())
    raise AssertionError(f"{example} has no trio-asgi command line")


def test_the_asgi2_example_runs_with_the_command_written_in_it(
    http_parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = command_of(EXAMPLES / "asgi2_app.py")
    assert command == ["trio-asgi", "--app-dir", "examples", "asgi2_app:App"]
    monkeypatch.chdir(REPO_ROOT)  # the command is written to run from the repository root
    # The same command, on a free port and with this test's parser.
    with ServerProcess(*command[1:], "--port", "0", "--http", http_parser) as server:
        assert server.wait_for_line("Serving the app as") == f"INFO:     {DECISION}"
        port = server.wait_for_port()
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=15)
        assert response.status_code == 200
        assert response.text == "Hello from ASGI 2.0 (started: yes)\n"
        server.proc.terminate()
        assert server.wait_for_exit() == EXIT_OK
    assert not any("Traceback" in line for line in server.lines)


def test_the_command_refuses_an_app_that_fits_no_interface_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "unfit.py").write_text(
        textwrap.dedent(
            """
            def app(scope, receive, send):
                pass
            """
        )
    )
    with ServerProcess("--port", "0", "--app-dir", str(tmp_path), "unfit:app") as server:
        status = server.wait_for_exit()
    errors = [line for line in server.lines if line.startswith("Error:")]
    assert status == EXIT_FAILURE
    assert errors == [
        "Error: the app unfit.app is a function that takes scope, receive, send: ASGI 3 if it "
        "returns an awaitable; --interface asgi3 serves it as that"
    ]
    assert server.lines == errors  # nothing else: no traceback, nothing bound
