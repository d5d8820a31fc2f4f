"""Every example in examples/ works as its docstring says.

Each example is loaded from its file (examples/ is not a package) and served on a real socket
with :func:`~tests.helpers.start_server`; the clients are httpx and raw Trio sockets.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import httpx
import pytest
import trio

from trio_asgi import ClientDisconnected

from ..helpers import RunningServer, read_until_eof, start_server

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module named ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hello = load_example("hello")
scope_dump = load_example("scope_dump")
streaming = load_example("streaming")
embed = load_example("embed")


# -- hello.py ----------------------------------------------------------------------------------


async def test_hello_answers_hello_world(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, hello.app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/any/path?x=1")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "13"
    await server.shutdown()
    assert server.stopped


async def test_hello_is_served_with_lifespan_on(nursery: trio.Nursery) -> None:
    # Returning from the lifespan scope is not a startup failure, even with lifespan="on".
    server = await start_server(nursery, hello.app, lifespan="on")
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.text == "Hello, world!"
    await server.shutdown()


# -- scope_dump.py -----------------------------------------------------------------------------


async def test_scope_dump_returns_the_request_scope(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, scope_dump.app)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            server.url + "/caf%C3%A9/a?x=1&y=%20", headers={"X-Test": "yes"}, content=b"ignored"
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    scope = response.json()
    assert scope["type"] == "http"
    assert scope["method"] == "POST"
    assert scope["path"] == "/café/a"
    assert scope["raw_path"] == "/caf%C3%A9/a"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["root_path"] == ""
    assert ["x-test", "yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == {"set_at_startup": "copied into every request scope"}
    await server.shutdown()


async def test_scope_dump_shows_root_path_is_not_prefixed_to_path(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, scope_dump.app, root_path="/api")
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/items")
    scope = response.json()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/items"
    await server.shutdown()


def test_to_json_decodes_bytes_as_latin_1_and_tuples_as_lists() -> None:
    value = {"raw": b"\xe9\x00", "pair": (b"a", 1), "other": object, "none": None}
    converted = scope_dump.to_json(value)
    assert converted == {"raw": "\xe9\x00", "pair": ["a", 1], "other": repr(object), "none": None}
    assert json.loads(json.dumps(converted)) == converted


# -- streaming.py ------------------------------------------------------------------------------


async def test_streaming_sends_every_line_chunked(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, streaming.app)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/?lines=3&interval=0")
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "line 1\nline 2\nline 3\n"
    await server.shutdown()


@pytest.mark.parametrize("query", ["lines=x", "lines=-1", "interval=nan", "interval=1e9"])
async def test_streaming_refuses_bad_settings(nursery: trio.Nursery, query: str) -> None:
    server = await start_server(nursery, streaming.app)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/?{query}")
    assert response.status_code == 400
    await server.shutdown()


async def request_lines(server: RunningServer, lines: int) -> trio.SocketStream:
    """Ask for ``lines`` lines 0.01 s apart; return once the first two have arrived."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    await stream.send_all(
        f"GET /?lines={lines}&interval=0.01 HTTP/1.1\r\nHost: test\r\n\r\n".encode("ascii")
    )
    received = b""
    with trio.fail_after(5):
        while b"line 2\n" not in received:
            chunk = await stream.receive_some(65536)
            assert chunk, "the server closed the stream early"
            received += chunk
    return stream


def lines_sent(capsys: pytest.CaptureFixture[str]) -> tuple[int, int]:
    """``(sent, requested)`` from the line the example prints when its producer stops."""
    match = re.search(r"streaming: sent (\d+) of (\d+) lines", capsys.readouterr().err)
    assert match is not None
    return int(match[1]), int(match[2])


# No server-side grace cancel and no shutdown deadline in these two tests: if the example did
# not stop its producer itself, shutdown() would wait for all 100_000 lines (1000 s).
NO_SERVER_DEADLINES: Final = {"disconnect_timeout": math.inf, "graceful_timeout": math.inf}


async def test_streaming_watcher_cancels_the_producer_on_http_disconnect(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """Way 1 alone: the client half-closes, so the server sees EOF but writes still succeed."""
    server = await start_server(nursery, streaming.app, **NO_SERVER_DEADLINES)
    stream = await request_lines(server, 100_000)
    await stream.send_eof()
    with trio.fail_after(5):
        rest = await read_until_eof(stream)  # the server closes once the app has returned
    await stream.aclose()
    assert not rest.endswith(b"0\r\n\r\n")  # cut short: no last chunk
    with trio.fail_after(5):
        await server.shutdown()
    sent, requested = lines_sent(capsys)
    assert 2 <= sent < requested == 100_000


async def test_streaming_producer_stops_when_the_client_closes(
    nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    """What CTRL+C in curl does: the connection closes, the app stops at once."""
    server = await start_server(nursery, streaming.app, **NO_SERVER_DEADLINES)
    stream = await request_lines(server, 100_000)
    await stream.aclose()
    with trio.fail_after(5):
        await server.shutdown()  # returns only once the app has returned
    sent, requested = lines_sent(capsys)
    assert 2 <= sent < requested == 100_000


async def test_stream_lines_stops_when_send_raises_client_disconnected() -> None:
    """Way 2: send() raises OSError (ClientDisconnected) while receive() says nothing yet."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        await trio.sleep_forever()  # no http.disconnect: only send() can tell
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and len(sent) == 3:
            raise ClientDisconnected("the client closed the connection")
        sent.append(message)

    with trio.fail_after(5):
        count = await streaming.stream_lines(receive, send, lines=10, interval=0)
    assert count == 2
    assert [message.get("body") for message in sent[1:]] == [b"line 1\n", b"line 2\n"]
    assert all(message.get("more_body") for message in sent[1:])


# -- embed.py ----------------------------------------------------------------------------------


async def test_embed_main_serves_fetches_and_shuts_down(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(10):
        body = await embed.main()
    assert body == embed.BODY.decode("utf-8")
    out = capsys.readouterr().out
    assert "serving on http://127.0.0.1:" in out
    assert out.endswith("the server has stopped\n")


async def test_embed_fetch_with_socket_reads_the_response(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, embed.app)
    with trio.fail_after(5):
        body = await embed.fetch_with_socket(server.host, server.port)
    assert body == embed.BODY.decode("utf-8")
    await server.shutdown()


async def test_embed_runs_as_a_script_and_exits_by_itself() -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, str(EXAMPLES / "embed.py")], capture_stdout=True, capture_stderr=True
        )
    assert result.returncode == 0
    assert b"the server has stopped" in result.stdout
    assert b"trio_asgi.access" in result.stderr
