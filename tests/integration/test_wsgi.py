"""Tier 3: WSGI apps (PEP 3333) served through ``WSGIAdapter`` on the real server.

Raw WSGI apps for each rule (the environ on the wire, streaming input with backpressure,
readline and iteration, ``write()``, ``exc_info``, the 500, HEAD and 204, the thread cap,
a client that leaves mid-stream, graceful shutdown and the hard stop, lifespan and
WebSocket), then Flask and examples/flask_app.py. The pure half (the environ builder,
``wsgi.input``, ``start_response``): tests/proto/test_wsgi_environ.py.

Until ``--interface wsgi`` is wired into ``serve()``, every test serves the adapter itself
as the ASGI app: ``serve(WSGIAdapter(app, threads=...), config)``.

A WSGI app's code runs in a worker thread; it tells the test what happened through
``trio.from_thread.run_sync(event.set, trio_token=...)`` and waits for the test on a
:class:`threading.Event`, so no test sleeps.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionRejected

from trio_asgi import ConfigError
from trio_asgi._interfaces.wsgi import StartResponse, WSGIAdapter, WSGIApp
from trio_asgi._types import Message, Receive, Scope, Send

from ..helpers import RunningServer, error_records, start_server
from ..websocket_tools import trio_websocket_client

TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"

Environ = dict[str, Any]


async def serve_wsgi(
    nursery: trio.Nursery, app: WSGIApp, *, threads: int = 4, **config: Any
) -> tuple[RunningServer, WSGIAdapter]:
    adapter = WSGIAdapter(app, threads=threads)
    return await start_server(nursery, adapter, **config), adapter


class Signal:
    """A trio.Event that a worker thread can set."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self._token = trio.lowlevel.current_trio_token()

    def set_from_thread(self) -> None:
        trio.from_thread.run_sync(self.event.set, trio_token=self._token)

    async def wait(self) -> None:
        with trio.fail_after(TIMEOUT):
            await self.event.wait()


def text_app(body: bytes = b"hello", status: str = "200 OK") -> WSGIApp:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


async def test_environ_on_the_wire(nursery: trio.Nursery) -> None:
    keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE")
    keys += ("CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR")
    keys += ("HTTP_X_A", "wsgi.url_scheme", "wsgi.multithread")

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        seen = {key: environ.get(key) for key in keys}
        seen["body"] = environ["wsgi.input"].read().decode()
        return [json.dumps(seen).encode()]

    server, _ = await serve_wsgi(nursery, app, root_path="/app")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/app/a%20b?x=1",
            content=b"data",
            headers=[("x-a", "1"), ("x-a", "2"), ("content-type", "text/plain")],
        )
    assert response.status_code == 200
    assert response.json() == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/a b",
        "QUERY_STRING": "x=1",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "4",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(server.port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_A": "1, 2",
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "body": "data",
    }


async def test_a_disconnect_ends_the_input(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """The client promises 100 bytes, sends 10 and resets: read() returns what came and
    then ends (b""), and the app's answer to nobody is not an error."""
    read = Signal()
    got: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        got.append(len(environ["wsgi.input"].read()))
        got.append(len(environ["wsgi.input"].read(5)))
        read.set_from_thread()
        start_response("200 OK", [])
        return [b"to nobody"]

    server, _ = await serve_wsgi(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()
    await read.wait()
    with trio.fail_after(TIMEOUT):
        await server.shutdown()
    assert got[0] <= 10
    assert got[1] == 0
    assert error_records(caplog) == []


async def test_file_wrapper_and_wsgi_errors(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    file = io.BytesIO(b"abcdefghij")

    def app(environ: Environ, start_response: StartResponse) -> Any:
        environ["wsgi.errors"].write("a line from the app\nand a tail")
        start_response("200 OK", [("Content-Length", "10")])
        return environ["wsgi.file_wrapper"](file, 4)

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url)
    assert response.text == "abcdefghij"
    with trio.fail_after(TIMEOUT):
        await server.shutdown()  # the thread has ended: close() came after the last chunk
    assert file.closed
    assert [r.getMessage() for r in error_records(caplog)] == ["a line from the app", "and a tail"]


async def test_other_scopes_and_bad_thread_counts() -> None:
    async def receive() -> Message:
        return {"type": "lifespan.unknown"}

    async def send(message: Message) -> None:
        raise AssertionError(message)

    adapter = WSGIAdapter(text_app(), threads=1)
    with pytest.raises(ValueError, match="'mqtt' scope"):
        await adapter({"type": "mqtt"}, receive, send)
    for threads in (0, True, 1.5):
        with pytest.raises(ConfigError, match="threads must be an int >= 1"):
            WSGIAdapter(text_app(), threads=threads)  # type: ignore[arg-type]


async def test_lifespan_ignores_unknown_messages() -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "x"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    await WSGIAdapter(text_app(), threads=1)({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_large_upload_is_streamed_in_small_pieces(nursery: trio.Nursery) -> None:
    """The app reads 1000 bytes at a time; the body is pulled from the connection only as
    it does, so what is held between the two (pulled, not yet read) stays one chunk."""
    size = 8 * 1024 * 1024  # bytes
    consumed = [0]  # bytes the app has read, written by its thread
    pulled = [0, 0]  # bytes pulled through receive(), and the most pulled but unread

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        reads = 0
        while piece := stream.read(1000):
            consumed[0] += len(piece)
            reads += 1
        start_response("200 OK", [])
        return [b"%d %d" % (consumed[0], reads)]

    adapter = WSGIAdapter(app, threads=2)

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            pulled[0] += len(message.get("body", b""))
            pulled[1] = max(pulled[1], pulled[0] - consumed[0])
            return message

        await adapter(scope, counted_receive, send)

    server = await start_server(nursery, counting, max_request_body_size=None)

    async def body() -> Any:
        for _ in range(size // 65536):
            yield b"x" * 65536

    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(server.url, content=body())
    assert response.text == f"{size} {size // 1000 + 1}"
    assert pulled[0] == size
    assert pulled[1] <= 1024 * 1024, f"{pulled[1]} bytes were pulled ahead of the app"


async def test_readline_readlines_and_iteration(nursery: trio.Nursery) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts = [stream.readline(), stream.readline(2), stream.readline()]
        parts += stream.readlines(4)
        parts += list(stream)
        start_response("200 OK", [])
        return [json.dumps([part.decode() for part in parts]).encode()]

    server, _ = await serve_wsgi(nursery, app)

    async def body() -> Any:
        for piece in (b"one\nt", b"wo\nthree\nf", b"our\nfive\nsix"):
            yield piece

    async with httpx.AsyncClient() as http:
        response = await http.post(server.url, content=body())
    assert response.json() == ["one\n", "tw", "o\n", "three\n", "four\n", "five\n", "six"]


async def test_write_callable_and_iterable_together(nursery: trio.Nursery) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        write(b"")
        write(b"b")
        return [b"", b"c"]

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url)
    assert response.text == "abc"
    assert response.headers["transfer-encoding"] == "chunked"


async def test_exc_info_before_the_head_replaces_the_status(nursery: trio.Nursery) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("missing")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Why", "key")], sys.exc_info())
        return [b"handled"]

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url)
    assert (response.status_code, response.text) == (503, "handled")
    assert response.headers["x-why"] == "key"
    assert "content-type" not in response.headers


async def test_exc_info_after_the_head_reraises_and_aborts(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    closed = Signal()

    class Body:
        def __init__(self, write: Callable[[bytes], None]) -> None:
            self.write = write

        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            raise AssertionError("not reached")

        def close(self) -> None:
            closed.set_from_thread()

    def app(environ: Environ, start_response: StartResponse) -> Any:
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())  # re-raises the KeyError
        return Body(write)

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(server.url)
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
    assert not closed.event.is_set()  # the app raised before returning an iterable


@pytest.mark.parametrize("where", ["call", "iteration"])
async def test_an_exception_answers_500_and_closes(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    closed = Signal()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("in the iteration")

        def close(self) -> None:
            closed.set_from_thread()

    def app(environ: Environ, start_response: StartResponse) -> Any:
        if where == "call":
            raise RuntimeError("in the call")
        start_response("200 OK", [])
        return Body()

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url)
    assert response.status_code == 500
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == f"in the {where}"
    if where == "iteration":
        await closed.wait()


async def test_a_body_without_start_response_is_an_error(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"no head"]

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url)
    assert response.status_code == 500
    [record] = error_records(caplog)
    assert "start_response" in str(record.exc_info[1] if record.exc_info else "")


async def test_head_and_204_have_no_body(nursery: trio.Nursery) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/empty":
            start_response("204 No Content", [])
            return [b"dropped"]
        return text_app()(environ, start_response)  # type: ignore[return-value]

    server, _ = await serve_wsgi(nursery, app)
    async with httpx.AsyncClient() as http:
        head = await http.head(server.url)
        empty = await http.get(f"{server.url}/empty")
        get = await http.get(server.url)  # the same keep-alive connection, still in step
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "5", b"")
    assert (empty.status_code, empty.content) == (204, b"")
    assert get.text == "hello"


async def test_concurrency_is_capped_by_threads(nursery: trio.Nursery) -> None:
    release = threading.Event()
    two_running = Signal()
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
            if running[0] == 2:
                two_running.set_from_thread()
        release.wait(TIMEOUT)
        with lock:
            running[0] -= 1
        start_response("200 OK", [])
        return [b"done"]

    adapter = WSGIAdapter(app, threads=2)
    arrived = [0]
    four_arrived = trio.Event()

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            arrived[0] += 1
            if arrived[0] == 4:
                four_arrived.set()
        await adapter(scope, receive, send)

    server = await start_server(nursery, counting)
    statuses: list[int] = []

    async def get(http: httpx.AsyncClient) -> None:
        statuses.append((await http.get(server.url)).status_code)

    async with httpx.AsyncClient(timeout=TIMEOUT) as http, trio.open_nursery() as clients:
        for _ in range(4):
            clients.start_soon(get, http)
        await two_running.wait()
        with trio.fail_after(TIMEOUT):
            await four_arrived.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert adapter.limiter.borrowed_tokens == 2
        assert adapter.limiter.statistics().tasks_waiting == 2
        release.set()
    assert statuses == [200] * 4
    assert running[1] == 2
    with trio.fail_after(TIMEOUT):
        await server.shutdown()  # every thread has returned (each after its last chunk)
    assert adapter.limiter.borrowed_tokens == 0


def endless_stream(closed: Signal, chunk: bytes = b"x" * 1024) -> tuple[WSGIApp, list[int]]:
    """An app that streams ``chunk`` forever; ``closed`` is set by its iterable's close()."""
    produced = [0]

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            while True:
                produced[0] += 1
                yield chunk

        def close(self) -> None:
            closed.set_from_thread()

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    return app, produced


async def test_client_leaving_mid_stream_closes_the_iterable(nursery: trio.Nursery) -> None:
    closed = Signal()
    app, produced = endless_stream(closed)
    server, adapter = await serve_wsgi(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await stream.receive_some(65536)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()  # a reset: the next write fails
    await closed.wait()
    with trio.fail_after(TIMEOUT):
        await server.shutdown()  # returns only once the thread has ended
    assert adapter.limiter.borrowed_tokens == 0
    assert produced[0] > 0


async def test_graceful_shutdown_waits_for_a_running_request(nursery: trio.Nursery) -> None:
    entered = Signal()
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        entered.set_from_thread()
        release.wait(TIMEOUT)
        start_response("200 OK", [])
        return [b"finished"]

    server, _ = await serve_wsgi(nursery, app)
    results: list[httpx.Response] = []

    async def get() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            results.append(await http.get(server.url))

    nursery.start_soon(get)
    await entered.wait()
    nursery.start_soon(server.shutdown)
    await trio.testing.wait_all_tasks_blocked()
    assert not server.stopped
    release.set()
    with trio.fail_after(TIMEOUT):
        await server.shutdown()  # already begun: waits for serve() to return
    assert [(r.status_code, r.text) for r in results] == [(200, "finished")]


async def test_hard_stop_waits_for_the_thread_and_closes(nursery: trio.Nursery) -> None:
    """Cancelling serve() mid-stream: serve() does not return while the thread runs; the
    thread's next send() raises Cancelled in it, its iterable is closed, and only then does
    the cancellation complete."""
    closed = Signal()
    paused = Signal()
    proceed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"first"
            paused.set_from_thread()
            proceed.wait(TIMEOUT)
            while True:
                yield b"more"

        def close(self) -> None:
            closed.set_from_thread()

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        return Body()

    async def release_when_blocked() -> None:
        await trio.testing.wait_all_tasks_blocked()  # serve() is waiting for the thread
        proceed.set()

    with trio.CancelScope() as outer:
        async with trio.open_nursery() as inner:
            server, _ = await serve_wsgi(inner, app)
            stream = await trio.open_tcp_stream(server.host, server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await stream.receive_some(65536)
            await paused.wait()
            nursery.start_soon(release_when_blocked)
            outer.cancel()
    closed_when_serve_returned = closed.event.is_set()  # no checkpoint since serve() ended
    assert outer.cancelled_caught
    assert closed_when_serve_returned
    await stream.aclose()


async def test_lifespan_is_answered_and_websocket_refused(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = await serve_wsgi(nursery, text_app(), lifespan="on")
    with pytest.raises(ConnectionRejected) as info:
        async with trio_websocket_client(server):
            pass
    assert info.value.status_code == 403
    await server.shutdown()
    assert error_records(caplog) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- Flask -----------------------------------------------------------------------------------


def load_flask_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_flask_app", EXAMPLES / "flask_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flask_example = load_flask_example()


def test_the_example_names_its_command() -> None:
    assert "trio-asgi --app-dir examples --interface wsgi flask_app:app" in (
        flask_example.__doc__ or ""
    )


async def test_flask_json_streaming_and_upload(nursery: trio.Nursery) -> None:
    server, _ = await serve_wsgi(nursery, flask_example.app)
    upload = b"line\n" * 50_000  # 250 kB
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        hello = await http.get(f"{server.url}/hello/trio")
        counted = await http.get(f"{server.url}/count", params={"to": 3})
        uploaded = await http.post(
            f"{server.url}/upload",
            files={"upload": ("data.txt", upload, "text/plain")},
            data={"note": "hi"},
        )
        missing = await http.get(f"{server.url}/nowhere")
    assert hello.json() == {"hello": "trio"}
    assert counted.text == "0 of 3\n1 of 3\n2 of 3\n"
    assert counted.headers["transfer-encoding"] == "chunked"
    assert uploaded.json() == {"name": "data.txt", "size": len(upload), "note": "hi"}
    assert missing.status_code == 404


async def test_flask_stream_stops_when_the_client_leaves(nursery: trio.Nursery) -> None:
    from flask import Flask, Response, stream_with_context

    closed = Signal()
    app = Flask("streaming")

    @app.get("/")
    def forever() -> Response:
        @stream_with_context
        def lines() -> Iterator[bytes]:
            try:
                while True:
                    yield b"x" * 1024
            finally:
                closed.set_from_thread()

        return Response(lines())

    server, adapter = await serve_wsgi(nursery, app)
    stream = await trio.open_tcp_stream(server.host, server.port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await stream.receive_some(65536)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()
    await closed.wait()
    with trio.fail_after(TIMEOUT):
        await server.shutdown()
    assert adapter.limiter.borrowed_tokens == 0


def test_the_flask_example_runs_with_the_command_written_in_it(
    http_parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_asgi2 import command_of
    from .test_cli import EXIT_OK, REPO_ROOT, ServerProcess

    command = command_of(EXAMPLES / "flask_app.py")
    assert command == ["trio-asgi", "--app-dir", "examples", "--interface", "wsgi", "flask_app:app"]
    monkeypatch.chdir(REPO_ROOT)  # the command is written to run from the repository root
    with ServerProcess(*command[1:], "--port", "0", "--http", http_parser) as server:
        port = server.wait_for_port()
        response = httpx.get(f"http://127.0.0.1:{port}/hello/trio", timeout=15)
        assert response.json() == {"hello": "trio"}
        streamed = httpx.get(f"http://127.0.0.1:{port}/count?to=3", timeout=15)
        assert streamed.text.splitlines() == ["0 of 3", "1 of 3", "2 of 3"]
        server.proc.terminate()
        assert server.wait_for_exit() == EXIT_OK
    assert not any("Traceback" in line for line in server.lines)
