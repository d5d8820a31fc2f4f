"""serve(): the root of the task tree, graceful shutdown, and the connections nursery.

Every task trio-asgi runs lives in this tree; none outlives its parent::

    serve(app, config)                     root nursery
    ├── shutdown watcher                   awaits shutdown_trigger(), then cancels the accept scope
    ├── lifespan task                      app({"type": "lifespan"}): startup ... shutdown
    └── (serve's own body)
        └── connections nursery            its deadline is set when graceful shutdown begins
            ├── accept loop, one per listener   _accept_loop, inside the accept cancel scope
            └── connection task, one per client HTTP11Connection.run() ("trio-asgi connection")
                └── connection nursery
                    ├── reader task        socket bytes -> parser -> request events
                    ├── app task           app(scope, receive, send) for the current request
                    └── closing task       short-lived, when the FIN cannot go out at once

The order of life:

1. bind the listening sockets (an ``OSError`` such as "address in use" is raised from here,
   before the app's startup runs);
2. start the lifespan task and wait until startup is over; a failed startup closes the
   sockets and raises :class:`~trio_asgi.LifespanFailure`;
3. report the bound addresses to ``task_status`` and accept connections;
4. graceful shutdown (when ``shutdown_trigger()`` returns): cancel the accept scope, which
   closes the listening sockets; close idle keep-alive connections; let requests in flight
   finish, answering with ``Connection: close``; after ``graceful_timeout`` seconds cancel
   the connections nursery;
5. once every connection is closed, run lifespan shutdown and return.

Cancelling :func:`serve` from outside is the hard stop: everything is cancelled at once and
lifespan shutdown does not run.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import trio

from . import _tasks as tasks
from ._config import Config
from ._context import ServerContext
from ._errors import LifespanFailure, LifespanShutdownFailure
from ._h11.connection import LINGER_TIMEOUT, HTTP11Connection
from ._lifespan import Lifespan
from ._logging import error_logger, format_address
from ._types import ASGIApp, ListenAddress, TCPAddress

__all__ = ["serve"]


async def serve(
    app: ASGIApp,
    config: Config | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    listeners: Sequence[trio.SocketListener] | None = None,
    task_status: trio.TaskStatus[list[ListenAddress]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI 3 application over HTTP/1.1 until shut down.

    ``trio.run(serve, app)`` serves on http://127.0.0.1:8000 until the process is
    interrupted. To embed it, start it in your own nursery; ``start`` returns once the
    sockets listen, with the addresses they are bound to (so ``port=0`` works)::

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(serve, app, Config(port=0))
            host, port = addresses[0]
            ...
            nursery.cancel_scope.cancel()   # hard stop

    Args:
        app: the ASGI 3 application, ``async def app(scope, receive, send)``.
        config: the settings; ``None`` means ``Config()``.
        shutdown_trigger: an async callable; when ``await shutdown_trigger()`` returns, the
            server shuts down gracefully (see the module docs) and ``serve`` returns. ``None``:
            serve until cancelled. Example: ``shutdown_trigger=event.wait``.
        listeners: sockets already listening (a worker process's, a supervisor's,
            ``trio.open_tcp_listeners``), served instead of binding ``config.host`` and
            ``config.port``. ``serve`` takes ownership: it closes them when it returns.
            ``None``: bind from the config.
        task_status: for ``nursery.start``: receives ``list[ListenAddress]``, one per
            listening socket; for TCP a :class:`~trio_asgi.TCPAddress`, the
            ``(host, port)`` it is bound to.

    Raises:
        OSError: a listening socket could not be bound (e.g. ``EADDRINUSE``).
        LifespanFailure: the app's lifespan startup failed (``lifespan.startup.failed``, or
            an exception with ``lifespan="on"``), did not complete within
            ``lifespan_startup_timeout``, or ``shutdown_trigger()`` returned before it
            completed; nothing was served.
        LifespanShutdownFailure: serving ended gracefully, but the app's lifespan shutdown
            failed (``lifespan.shutdown.failed``, an exception, or
            ``lifespan_shutdown_timeout``); raised once every connection is closed.
        TypeError: ``config`` is not a :class:`Config`, or ``listeners`` holds something
            that is not a ``trio.SocketListener``.
    """
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a trio_asgi.Config, not {type(config).__name__}")
    if listeners is not None:
        listeners = list(listeners)
        for listener in listeners:
            if not isinstance(listener, trio.SocketListener):
                raise TypeError(f"listeners must be trio.SocketListener objects, not {listener!r}")
    server = _Server(app, config)
    await server.run(shutdown_trigger, listeners, task_status)


class _Server:
    """The state of one :func:`serve` call: its scopes, connections and lifespan."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.config = config
        self.context = ServerContext(app=app, config=config)
        self.lifespan = Lifespan(app, config.lifespan)
        self.context.state = self.lifespan.state
        self.accept_scope = trio.CancelScope()
        # Cancelled by the shutdown watcher: a shutdown requested while lifespan startup is
        # still running ends that startup (it may hang for lifespan_startup_timeout, or for
        # ever); nothing has been served, so it counts as a startup failure.
        self.startup_scope = trio.CancelScope()

    async def run(
        self,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None,
        listeners: list[trio.SocketListener] | None,
        task_status: trio.TaskStatus[list[ListenAddress]],
    ) -> None:
        config = self.config
        if listeners is None:
            listeners = await trio.open_tcp_listeners(
                config.port, host=config.host, backlog=config.backlog
            )
        try:
            async with trio.open_nursery() as root:
                if shutdown_trigger is not None:
                    root.start_soon(
                        self._watch_for_shutdown, shutdown_trigger, name=tasks.SHUTDOWN_WATCHER.name
                    )
                if config.lifespan != "off":
                    with (
                        self.startup_scope,
                        trio.move_on_after(config.lifespan_startup_timeout) as startup,
                    ):
                        await root.start(self.lifespan.run, name=tasks.LIFESPAN.name)
                    cut_short = None
                    if startup.cancelled_caught:
                        cut_short = (
                            f"startup did not complete within {config.lifespan_startup_timeout} s"
                        )
                    elif self.startup_scope.cancelled_caught:
                        cut_short = "shutdown was requested before startup completed"
                    if cut_short is not None:
                        self.lifespan.failure = cut_short
                        error_logger.error("Application startup failed: %s", cut_short)
                if self.lifespan.failure is None:
                    if self.lifespan.app_context is not None:
                        self.context.app_context = self.lifespan.app_context
                    addresses = [_listener_address(listener) for listener in listeners]
                    for host, port in addresses:
                        error_logger.info(
                            "Listening on http://%s (press CTRL+C to quit)",
                            format_address((host, port)),
                        )
                    task_status.started(addresses)
                    await self._serve_connections(listeners)
                    with trio.move_on_after(config.lifespan_shutdown_timeout) as shutdown:
                        await self.lifespan.shutdown()
                    if shutdown.cancelled_caught:
                        error_logger.warning(
                            "Application shutdown did not complete within %s s; cancelled it",
                            config.lifespan_shutdown_timeout,
                        )
                        self.lifespan.shutdown_failure = (
                            f"shutdown did not complete within {config.lifespan_shutdown_timeout} s"
                        )
                    error_logger.info("Server stopped")
                root.cancel_scope.cancel()  # the watcher and a lifespan task that lingers
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
        if self.lifespan.failure is not None:
            raise LifespanFailure(self.lifespan.failure)
        if self.lifespan.shutdown_failure is not None:
            raise LifespanShutdownFailure(self.lifespan.shutdown_failure)

    async def _watch_for_shutdown(self, shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
        await shutdown_trigger()
        error_logger.info("Graceful shutdown: no longer accepting connections")
        self.startup_scope.cancel()  # a no-op once startup is over
        self.accept_scope.cancel()

    async def _serve_connections(self, listeners: list[trio.SocketListener]) -> None:
        async with trio.open_nursery() as connections:
            with self.accept_scope:
                async with trio.open_nursery() as accepting:
                    for listener in listeners:
                        accepting.start_soon(
                            self._accept_loop, listener, connections, name=tasks.ACCEPT_LOOP.name
                        )
            # Graceful shutdown: the listeners are closed; now the connections.
            self.context.shutting_down = True
            busy = 0
            for connection in list(self.context.connections):
                connection.begin_shutdown()
                busy += not connection.is_idle
            if busy:
                error_logger.info(
                    "Waiting for %d connection(s) to finish (at most %s s)",
                    busy,
                    self.config.graceful_timeout,
                )
            connections.cancel_scope.deadline = trio.current_time() + self.config.graceful_timeout
        if connections.cancel_scope.cancelled_caught:
            error_logger.warning(
                "Graceful shutdown timed out after %s s; cancelled the remaining requests",
                self.config.graceful_timeout,
            )

    async def _accept_loop(self, listener: trio.SocketListener, connections: trio.Nursery) -> None:
        """Accept connections on ``listener`` until cancelled, each into its own task.

        The loop of :func:`trio.serve_listeners`, except that closing each stream is left to
        its connection (which always closes it), sparing a second close per connection, and
        that connections come in batches: after each awaited accept, up to
        ``ACCEPT_BATCH - 1`` more that are already waiting are accepted without a
        checkpoint (as asyncio accepts a batch per readiness event). Trio's ``accept()``
        yields after every connection, so under load each new connection waited for a
        whole pass of the scheduler over the busy ones: a storm of 256 new connections
        took seconds to be answered. The batch is taken through a second descriptor of the
        listening socket (``dup``), closed with the listener.
        """
        async with listener:
            batch = socket.socket(fileno=os.dup(listener.socket.fileno()))
            with batch:
                batch.setblocking(False)  # shared with the listener's; never wait on it
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                            raise
                        # Out of file descriptors or memory: wait for connections to close.
                        error_logger.error(
                            "accept returned %s (%s); retrying in %s s",
                            errno.errorcode[exc.errno],
                            os.strerror(exc.errno),
                            _ACCEPT_RETRY_DELAY,
                        )
                        await trio.sleep(_ACCEPT_RETRY_DELAY)
                        continue
                    self._start_connection(stream, connections)
                    self._accept_waiting(batch, connections)

    def _accept_waiting(self, batch: socket.socket, connections: trio.Nursery) -> None:
        """Accept up to ``ACCEPT_BATCH - 1`` connections already waiting, synchronously.

        Any error ends the batch: none waiting (``BlockingIOError``) or any other, which the
        next awaited accept meets again and handles (EMFILE and the like).
        """
        for _ in range(ACCEPT_BATCH - 1):
            try:
                sock, _ = batch.accept()
            except OSError:
                return
            self._start_connection(
                trio.SocketStream(trio.socket.from_stdlib_socket(sock)), connections
            )

    def _start_connection(self, stream: trio.SocketStream, connections: trio.Nursery) -> None:
        """Start a task for a new connection: ``HTTP11Connection.run()``, which always closes
        ``stream``, or past ``max_connections`` a 503 refusal."""
        limit = self.config.max_connections
        if limit is not None and len(self.context.connections) >= limit:
            connections.start_soon(_refuse_connection, stream, limit, name=tasks.REFUSAL.name)
            return
        try:
            connection = HTTP11Connection(stream, self.context)
        except Exception:  # noqa: BLE001 - a bug in one connection must not stop the server
            error_logger.exception("Unexpected error on a new connection")
            stream.socket.close()
            return
        connections.start_soon(connection.run, name=tasks.CONNECTION.name)


#: accept(2) errors that mean the system is out of a resource, not that the listener broke
#: (the list trio.serve_listeners uses).
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_RETRY_DELAY: Final = 0.1  # seconds
#: Connections accepted per pass of the scheduler at most (see _Server._accept_loop).
ACCEPT_BATCH: Final = 64


_SERVICE_UNAVAILABLE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 24\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"\r\n"
    b"503 Service Unavailable\n"
)


async def _refuse_connection(stream: trio.SocketStream, limit: int) -> None:
    """Over ``max_connections``: answer 503 without reading the request, then close.

    A lingering close (FIN, then drain for a moment) so the client reads the 503 instead of a
    reset. Bounded by ``LINGER_TIMEOUT``; the accept loop never waits for it.
    """
    error_logger.info("Connection limit (%d) reached; refused a connection with 503", limit)
    with trio.move_on_after(LINGER_TIMEOUT):
        try:
            await stream.send_all(_SERVICE_UNAVAILABLE)
            await stream.send_eof()
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone: nothing more to tell it
    await trio.aclose_forcefully(stream)


def _listener_address(listener: trio.SocketListener) -> ListenAddress:
    host, port = listener.socket.getsockname()[:2]
    return TCPAddress(str(host), int(port))
