"""A WSGI app (PEP 3333) served as an ASGI 3 app, on Trio worker threads.

:class:`WSGIAdapter` is an ASGI 3 callable, so the server's one app boundary serves it
like any other app. Each ``http`` request runs the WSGI app in a worker thread; the thread
hops back to the request's own Trio task for every byte it moves::

    app task (Trio)                          worker thread (trio.to_thread.run_sync)
    WSGIAdapter.__call__ ── limiter ──────>  app(environ, start_response)
      waits, running each hop it is sent:      wsgi.input.read()  -> from_thread.run(receive)
      receive() / send() of the request        each chunk, write() -> from_thread.run(send)
    <── the thread's return or exception ──   result.close(), always

The rules it keeps:

- **Threads**: at most ``threads`` requests run the app at once (one
  :class:`trio.CapacityLimiter` per adapter); the others wait for a thread in their Trio
  task. Trio's own thread never runs, nor waits for, WSGI code.
- **Input**: ``wsgi.input`` (:class:`~trio_asgi._interfaces.pep3333.RequestBody`) calls
  ``receive()`` only when the app reads bytes that have not arrived, so the server's body
  backpressure reaches the client: at most one chunk of body is held. A client that
  disconnects ends the input (reads return ``b""``).
- **Output**: the head is sent with the first non-empty chunk (or at the end); each chunk
  is one ``send()``, which returns once its bytes are handed to the socket, so a generator
  that streams for minutes holds one chunk at a time. ``close()`` of the app's iterable is
  called in every case: the iteration ended, the app raised, or ``send()`` raised because
  the client left (:class:`~trio_asgi.ClientDisconnected`) or the request was cancelled.
- **Errors**: the app's exception leaves the thread, is re-raised in the app task and
  reaches the app boundary, which logs it and answers 500 if nothing was sent (else the
  connection is aborted). HEAD, 204 and 304 bodies are dropped by the response framing.
- **Cancellation**: a thread cannot be killed. ``abandon_on_cancel=False``: a request whose
  task is cancelled (the client gone past ``disconnect_timeout``, the graceful shutdown
  deadline, the hard stop) waits for its thread, and the thread's next ``receive()`` or
  ``send()`` raises :class:`trio.Cancelled` in it, which ends the app's read or iteration;
  ``close()`` runs and the thread returns. An app blocked in code of its own (a query that
  never returns) holds its request, and so ``serve()``'s exit, until it returns: Python
  cannot interrupt a thread.
- **Other scopes**: ``lifespan`` is answered (a WSGI app has none), ``websocket`` is
  refused (``websocket.close`` before accept: a 403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import trio

from .._errors import ConfigError, UnexpectedMessage
from .._types import Message, Receive, Scope, Send
from .pep3333 import ErrorStream, ExcInfo, RequestBody, ResponseStart, wsgi_environ

__all__ = ["StartResponse", "WSGIAdapter", "WSGIApp"]

#: ``start_response(status, headers, exc_info=None)`` returns ``write(data)``.
StartResponse = Callable[..., Callable[[bytes], None]]
#: A PEP 3333 application: ``app(environ, start_response)`` returns an iterable of bytes.
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WSGIAdapter:
    """Serve the WSGI app ``app`` as an ASGI 3 app: ``await adapter(scope, receive, send)``.

    Args:
        app: a PEP 3333 application.
        threads: how many of its requests run at once, each in a worker thread (>= 1;
            ``Config.wsgi_threads``).

    Attributes:
        app: the WSGI app.
        limiter: the :class:`trio.CapacityLimiter` the adapter's requests share.

    Raises:
        ConfigError: ``threads`` is not an int >= 1.
    """

    __slots__ = ("app", "limiter")

    def __init__(self, app: WSGIApp, *, threads: int) -> None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"threads must be an int >= 1, not {threads!r}")
        self.app = app
        self.limiter = trio.CapacityLimiter(threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope.

        Raises:
            Exception: whatever the WSGI app raised, for the app boundary to log.
            ClientDisconnected: the client left while the response was being sent.
            ValueError: the scope's type is not ``http``, ``websocket`` or ``lifespan``.
        """
        scope_type = scope["type"]
        if scope_type == "http":
            request = _Request(self.app, scope, receive, send)
            await trio.to_thread.run_sync(
                request.run,
                limiter=self.limiter,
                abandon_on_cancel=False,
                thread_name=f"trio-asgi WSGI {scope['method']} {scope['path']}",
            )
        elif scope_type == "lifespan":
            await _lifespan(receive, send)
        elif scope_type == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # a WSGI app cannot speak WebSocket
        else:
            raise ValueError(f"WSGIAdapter cannot serve a {scope_type!r} scope")


async def _lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan protocol for an app that has none: both phases complete at once."""
    while True:
        message_type = (await receive())["type"]
        if message_type == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message_type == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_all(send: Send, *messages: Message) -> None:
    for message in messages:
        await send(message)


class _Request:
    """One ``http`` request: :meth:`run` is the worker thread's body; every other method
    runs in that thread too and reaches Trio only through ``trio.from_thread.run``."""

    __slots__ = ("_app", "_errors", "_receive", "_scope", "_send", "_start")

    def __init__(self, app: WSGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        self._app = app
        self._scope = scope
        self._receive = receive
        self._send = send
        self._start = ResponseStart(self._write)
        self._errors = ErrorStream()

    def run(self) -> None:
        """Call the app and send its response; ``close()`` its iterable whatever happens.

        Raises:
            Exception: what the app raised (from the call, the iteration or ``close()``).
            ClientDisconnected: ``send()`` found the client gone.
            trio.Cancelled: the request's task was cancelled.
        """
        environ = wsgi_environ(self._scope, RequestBody(self._fetch), self._errors)
        try:
            result = self._app(environ, self._start_response)
            try:
                for chunk in result:
                    if chunk:
                        self._send_body(chunk, more_body=True)
                self._send_body(b"", more_body=False)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            self._errors.flush()

    def _start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        return self._start.start_response(status, headers, exc_info)

    def _fetch(self) -> tuple[bytes, bool]:
        """The next request body chunk and whether more follow; a disconnect ends it."""
        message = trio.from_thread.run(self._receive)
        if message["type"] == "http.request":
            return message.get("body", b""), message.get("more_body", False)
        return b"", False  # http.disconnect

    def _write(self, data: bytes) -> None:
        """The ``write()`` callable ``start_response`` returns (PEP 3333): send ``data`` now
        (the head first, if it has not gone yet).

        Raises:
            ClientDisconnected: the client is gone.
            trio.Cancelled: the request's task was cancelled.
        """
        if data:
            self._send_body(data, more_body=True)

    def _send_body(self, data: bytes, *, more_body: bool) -> None:
        start = self._start
        body = {"type": "http.response.body", "body": data, "more_body": more_body}
        if start.head_sent:
            trio.from_thread.run(self._send, body)
            return
        if start.status is None:
            raise UnexpectedMessage(
                "The WSGI app returned its body without calling start_response()"
            )
        head = {"type": "http.response.start", "status": start.status, "headers": start.headers}
        start.head_sent = True
        trio.from_thread.run(_send_all, self._send, head, body)
