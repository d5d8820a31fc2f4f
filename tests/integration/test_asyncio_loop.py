"""Tier 3: asyncio apps on the Trio server (``loop="asyncio"``, trio-asyncio), end to end.

A raw asyncio ASGI app, WebSocket and lifespan through the bridge; disconnects,
``request_timeout``, graceful shutdown and the hard stop cancel the app's asyncio work (it
sees ``asyncio.CancelledError``); asgiref's ``sync_to_async`` (the executor bridge); Django's
ASGI handler (tests/apps/django_asgi_min.py). And, with ``loop="trio"``, the one first-run
hint for an app that needs asyncio. The apps tell the test what they did through Trio
events, which asyncio code can set: under trio-asyncio it runs in the Trio thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from ..helpers import error_records, start_server
from ..websocket_tools import ws_url

HINT = "The app uses asyncio"


def asyncio_running() -> bool:
    """The caller runs as asyncio code: a running loop and a current asyncio task."""
    return asyncio.get_running_loop() is not None and asyncio.current_task() is not None


async def answer(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def sleeping_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that needs asyncio: ``asyncio.sleep`` before it answers."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.001)
    await answer(send, b"slept on " + type(asyncio.get_running_loop()).__name__.encode())


async def test_an_asyncio_app_answers_200(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, sleeping_app, loop="asyncio", lifespan="off")
    async with httpx.AsyncClient() as http:
        responses = [await http.get(server.url + f"/{n}") for n in range(3)]
    assert [(r.status_code, r.text) for r in responses] == [(200, "slept on TrioEventLoop")] * 3
    await server.shutdown()


class Waiter:
    """An asyncio app that starts a streaming response (or none), then waits for ever; it
    records, through Trio events, that it is waiting and that it was cancelled."""

    def __init__(self, *, start_response: bool = True) -> None:
        self.start_response = start_response
        self.waiting = trio.Event()
        self.cancelled = trio.Event()
        self.disconnect_seen = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self.start_response:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            assert asyncio_running()
            self.waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def open_request(port: int, target: str = "/") -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return stream


async def test_a_streaming_response_whose_client_leaves_is_cancelled(
    nursery: trio.Nursery,
) -> None:
    app = Waiter()
    server = await start_server(nursery, app, loop="asyncio", lifespan="off", disconnect_timeout=0)
    stream = await open_request(server.port)
    await app.waiting.wait()
    head = await stream.receive_some()
    assert head.startswith(b"HTTP/1.1 200 ")
    await stream.aclose()
    await app.cancelled.wait()  # the app's `except asyncio.CancelledError` ran
    await server.shutdown()


async def test_request_timeout_cancels_the_asyncio_app_with_504(nursery: trio.Nursery) -> None:
    app = Waiter(start_response=False)
    # Long enough for the app to have started: a task cancelled before its first step
    # never runs, so it would never see the CancelledError.
    server = await start_server(nursery, app, loop="asyncio", lifespan="off", request_timeout=0.5)
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/slow")
    assert response.status_code == 504
    assert app.waiting.is_set()
    assert app.cancelled.is_set()
    await server.shutdown()


async def test_graceful_shutdown_cancels_the_asyncio_app_after_its_timeout(
    nursery: trio.Nursery,
) -> None:
    app = Waiter()
    server = await start_server(nursery, app, loop="asyncio", lifespan="off", graceful_timeout=0)
    stream = await open_request(server.port)
    await app.waiting.wait()
    await server.shutdown()  # returns: the loop and every asyncio task are closed
    assert app.cancelled.is_set()
    await stream.aclose()


async def test_the_hard_stop_cancels_the_asyncio_app(nursery: trio.Nursery) -> None:
    app = Waiter()
    with trio.CancelScope() as hard_stop:
        async with trio.open_nursery() as inner:
            server = await start_server(inner, app, loop="asyncio", lifespan="off")
            stream = await open_request(server.port)
            await app.waiting.wait()
            hard_stop.cancel()
    assert app.cancelled.is_set()
    assert server.stopped
    await stream.aclose()


async def ws_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket echo written as asyncio code."""
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await asyncio.sleep(0)
        assert asyncio_running()
        await send({"type": "websocket.send", "text": "echo " + message["text"]})


async def test_a_websocket_echo_through_the_bridge(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, ws_echo, loop="asyncio", lifespan="off")
    async with open_websocket_url(ws_url(server, "/echo")) as ws:
        for text in ("one", "two"):
            await ws.send_message(text)
            assert await ws.get_message() == "echo " + text
    await server.shutdown()


class LifespanApp:
    """Lifespan startup and shutdown as asyncio code, with state for the requests."""

    def __init__(self) -> None:
        self.shutdown_ran = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await asyncio.sleep(0)
                if message["type"] == "lifespan.startup":
                    scope["state"]["made_by"] = f"startup on {asyncio_running()}"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.shutdown_ran = asyncio_running()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await answer(send, scope["state"]["made_by"].encode())


async def test_lifespan_startup_and_shutdown_with_state_through_the_bridge(
    nursery: trio.Nursery,
) -> None:
    app = LifespanApp()
    server = await start_server(nursery, app, loop="asyncio", lifespan="on")
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.text == "startup on True"
    await server.shutdown()
    assert app.shutdown_ran


async def test_asgiref_sync_to_async_runs_in_its_own_executor(nursery: trio.Nursery) -> None:
    from asgiref.sync import sync_to_async

    def blocking() -> str:
        return threading.current_thread().name

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        # thread_sensitive (the default): asgiref's own single-thread ThreadPoolExecutor
        name = await sync_to_async(blocking)()
        other = await sync_to_async(blocking, thread_sensitive=False)()  # the loop's own
        await answer(send, f"{name}|{other}".encode())

    server = await start_server(nursery, app, loop="asyncio", lifespan="off")
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert response.status_code == 200
    sensitive, other = response.text.split("|")
    assert sensitive.startswith("ThreadPoolExecutor-")
    assert threading.current_thread().name not in (sensitive, other)
    await server.shutdown()


@pytest.fixture
def django_app(django_settings: None) -> Iterator[Any]:
    from django.test import override_settings

    # No middleware: the example project's are sync-only, and Django would then consume the
    # async stream in a worker thread (its ASGI handler adapts them), out of the Trio thread.
    with override_settings(ROOT_URLCONF="tests.apps.django_asgi_min", MIDDLEWARE=[]):
        from ..apps import django_asgi_min

        django_asgi_min.EVENTS = django_asgi_min.StreamEvents()
        yield django_asgi_min


async def test_django_async_and_sync_views(nursery: trio.Nursery, django_app: Any) -> None:
    server = await start_server(nursery, django_app.application, loop="asyncio")
    async with httpx.AsyncClient() as http:
        async_view = await http.get(server.url + "/async")
        sync_view = await http.get(server.url + "/sync")
    assert (async_view.status_code, async_view.text) == (200, "hello from an async view")
    assert sync_view.status_code == 200
    assert sync_view.text.startswith("hello from thread ThreadPoolExecutor-")
    await server.shutdown()


async def test_django_cancels_the_streaming_view_when_the_client_leaves(
    nursery: trio.Nursery, django_app: Any
) -> None:
    # disconnect_timeout stays long: Django's own disconnect listener cancels the view.
    server = await start_server(
        nursery, django_app.application, loop="asyncio", disconnect_timeout=3600
    )
    stream = await open_request(server.port, "/stream")
    await django_app.EVENTS.streaming.wait()
    await stream.aclose()
    await django_app.EVENTS.cancelled.wait()
    await server.shutdown()


# -- the first-run hint, with loop="trio" -------------------------------------------------


async def failing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/sleep":
        await asyncio.sleep(1)  # RuntimeError: no running event loop
    elif scope["path"] == "/future":
        await asyncio.sleep(0)  # TypeError: trio.run received unrecognized yield message
    raise ValueError("not about asyncio")


def hints(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in error_records(caplog) if r.getMessage().startswith(HINT)]


async def test_an_asyncio_app_on_trio_is_told_once_to_use_the_asyncio_loop(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trio_asgi.error")
    server = await start_server(nursery, failing_app, lifespan="off")
    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url + "/other")).status_code == 500
        assert hints(caplog) == []  # another error: no hint
        for path in ("/sleep", "/future", "/sleep"):
            assert (await http.get(server.url + path)).status_code == 500
    [hint] = hints(caplog)
    assert "--loop asyncio" in hint
    assert 'Config(loop="asyncio")' in hint
    await server.shutdown()


async def test_each_server_gives_the_hint_once(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trio_asgi.error")
    first = await start_server(nursery, failing_app, lifespan="off")
    second = await start_server(nursery, failing_app, lifespan="off")
    async with httpx.AsyncClient() as http:
        for server in (first, second, first, second):
            assert (await http.get(server.url + "/sleep")).status_code == 500
    assert len(hints(caplog)) == 2
    await first.shutdown()
    await second.shutdown()


async def test_a_cancelled_error_the_server_did_not_cause_is_a_500(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise asyncio.CancelledError

    server = await start_server(nursery, app, loop="asyncio", lifespan="off")
    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url + "/")).status_code == 500
        assert (await http.get(server.url + "/")).status_code == 500  # the server goes on
    [first, _] = error_records(caplog)
    assert isinstance(first.exc_info[1], RuntimeError)  # type: ignore[index]
    assert "did not cancel it" in str(first.exc_info[1])  # type: ignore[index]
    await server.shutdown()


async def test_the_app_cancelling_its_own_receive_cancels_the_servers(
    nursery: trio.Nursery,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the (empty) body
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(receive(), 0.01)  # waits for a disconnect: times out
        await answer(send, b"still served")

    server = await start_server(nursery, app, loop="asyncio", lifespan="off")
    async with httpx.AsyncClient() as http:
        response = await http.get(server.url + "/")
    assert (response.status_code, response.text) == (200, "still served")
    await server.shutdown()
