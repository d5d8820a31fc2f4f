"""A small Django ASGI app: Django's own ASGI handler, with views of its own.

Served by tests/integration/test_asyncio_loop.py under ``loop="asyncio"`` (Django's ASGI
handler is asyncio code). Views:

- ``/async``: an async view, ``hello from an async view``.
- ``/sync``: a sync view; Django runs it through asgiref's ``sync_to_async`` in a thread
  executor of its own (the bridge's executor path), ``hello from thread <name>``.
- ``/stream``: an async streaming response: one chunk, then it waits for ever; when the
  client leaves, Django's disconnect listener cancels it, and :data:`EVENTS` says so.

Django is set up with the suite's one settings module (the ``django_settings`` fixture,
tests/integration/conftest.py); these views replace its ``ROOT_URLCONF`` for the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import trio
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path


class StreamEvents:
    """What the ``/stream`` view did: Trio events, set from its asyncio code (asyncio runs in
    the Trio thread under trio-asyncio, so ``trio.Event.set`` works there)."""

    def __init__(self) -> None:
        self.streaming = trio.Event()
        self.cancelled = trio.Event()


EVENTS = StreamEvents()


async def async_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return HttpResponse(b"hello from an async view")


def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"hello from thread {threading.current_thread().name}".encode())


async def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first chunk"
            EVENTS.streaming.set()
            await asyncio.Event().wait()
            yield b"never"
        except asyncio.CancelledError:
            EVENTS.cancelled.set()
            raise

    return StreamingHttpResponse(chunks(), content_type="text/plain")


urlpatterns = [
    path("async", async_view),
    path("sync", sync_view),
    path("stream", stream_view),
]

application = get_asgi_application()
