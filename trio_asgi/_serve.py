"""serve(): the root of the task tree, graceful shutdown, and the connections nursery.

Every task trio-asgi runs lives in this tree; none outlives its parent::

    serve(app, config)                     root nursery (loop="asyncio": inside the asyncio loop)
    ├── shutdown watcher                   awaits shutdown_trigger(), then cancels the accept scope
    ├── tls reloader                       awaits reload_trigger(), then reads the TLS files again
    ├── lifespan task                      app({"type": "lifespan"}): startup ... shutdown
    └── (serve's own body)
        └── connections nursery            its deadline is set when graceful shutdown begins
            ├── accept loop, one per listener   _net.listeners.accept_loop, in the accept scope
            └── connection task, one per client _connection.handle_connection
                └── connection nursery  (first: PROXY header, TLS handshake, if on)
                    ├── reader task        socket bytes -> parser -> request events
                    ├── app task           app(scope, receive, send) for the current request
                    └── closing task       short-lived, when the FIN cannot go out at once

The order of life:

0. adapt the app to the one ASGI 3 callable everything calls (``_interfaces.adapt``); an
   app that fits no interface is refused here, before any socket is bound;
1. with ``loop="asyncio"``, host the asyncio loop the app runs on
   (``AsyncioBridge.open_loop``, trio-asyncio), around everything below, so it lives exactly
   as long as ``serve()``;
   read the TLS files (``ssl_certfile``...; a ``ConfigError`` names the one that fails);
   bind the listening sockets: the config's binds, else systemd's, else host and port (an
   ``OSError`` such as "address in use" is raised from here, before the app's startup runs);
2. start the lifespan task and wait until startup is over; a failed startup closes the
   sockets and raises :class:`~trio_asgi.LifespanFailure`;
3. report the bound addresses to ``task_status`` and accept connections;
4. graceful shutdown (when ``shutdown_trigger()`` returns): cancel the accept scope, which
   closes the listening sockets; close idle keep-alive connections; let requests in flight
   finish, answering with ``Connection: close``; after ``graceful_timeout`` seconds cancel
   the connections nursery;
5. once every connection is closed, run lifespan shutdown, remove the Unix socket files
   bound here (if they are still ours) and return.

Cancelling :func:`serve` from outside is the hard stop: everything is cancelled at once and
lifespan shutdown does not run.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import trio

from . import _tasks as tasks
from ._config import Config
from ._connection import handle_connection, is_tcp, open_connection, refuse_connection
from ._context import ServerContext
from ._errors import LifespanFailure, LifespanShutdownFailure
from ._h11.settings import HTTP11Settings
from ._interfaces.adapt import adapt
from ._interfaces.asyncio_loop import AsyncioBridge
from ._lifespan import Lifespan
from ._logging import display_url, error_logger
from ._net.binds import SYSTEMD_VARIABLES, Bind, FDBind, config_binds, systemd_listen_fds
from ._net.listeners import (
    UnixSocketFile,
    accept_loop,
    bind,
    listener_address,
    unix_socket_files,
    unlink_unix_sockets,
)
from ._net.tls import ReloadableContext, ServerTLS, TLSSettings
from ._standalone import sole_keyboard_interrupt
from ._types import ASGIApp, ListenAddress

if sys.version_info < (3, 11):  # pragma: no cover - the builtin from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["serve"]


async def serve(
    app: ASGIApp,
    config: Config | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    reload_trigger: Callable[[], Awaitable[Any]] | None = None,
    listeners: Sequence[trio.SocketListener] | None = None,
    task_status: trio.TaskStatus[list[ListenAddress]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI application (or a WSGI one) over HTTP/1.1 until shut down.

    ``trio.run(serve, app)`` serves on http://127.0.0.1:8000 until the process is
    interrupted. To embed it, start it in your own nursery; ``start`` returns once the
    sockets listen, with the addresses they are bound to (so ``port=0`` works)::

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(serve, app, Config(port=0))
            host, port = addresses[0]
            ...
            nursery.cancel_scope.cancel()   # hard stop

    Args:
        app: the application: ASGI 3 (``async def app(scope, receive, send)``), ASGI 2 (a
            double callable) or WSGI (``def app(environ, start_response)``), as
            ``config.interface`` says; with ``"auto"`` (the default), read from its
            signature, and one INFO line says what was decided.
        config: the settings; ``None`` means ``Config()``.
        shutdown_trigger: an async callable; when ``await shutdown_trigger()`` returns, the
            server shuts down gracefully (see the module docs) and ``serve`` returns. ``None``:
            serve until cancelled. Example: ``shutdown_trigger=event.wait``.
        reload_trigger: an async callable awaited again and again; each time it returns, the
            TLS files (``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs``) are read again,
            in a worker thread, and connections accepted afterwards use them; files that fail
            to load are logged and the previous certificate stays in use. The ``trio-asgi``
            command and ``trio_asgi.run()`` pass SIGHUP. Ignored without TLS files.
            Example: ``reload_trigger=functools.partial(anext, signal_receiver)``.
        listeners: sockets already listening (a worker process's, a supervisor's,
            ``trio.open_tcp_listeners``), served instead of binding what the config names.
            ``serve`` takes ownership: it closes them when it returns. ``None``: bind from the
            config: its ``bind``, ``uds`` and ``fd``, else systemd's sockets (socket
            activation, sd_listen_fds(3)) if it passed this process any, else ``host`` and
            ``port``. Unix socket files it creates are removed when it returns.
        task_status: for ``nursery.start``: receives ``list[ListenAddress]``, one per
            listening socket: for TCP a :class:`~trio_asgi.TCPAddress`, the
            ``(host, port)`` it is bound to; for a Unix socket a ``UnixAddress``
            ``(path, None)``.

    Raises:
        AppImportError: with ``interface="auto"``, ``app`` fits no interface (or several):
            raised before anything is bound; the message names the ``--interface`` that
            serves it anyway.
        ConfigError: a ``bind`` entry is malformed, or systemd's variables are; a TLS file
            cannot be read or used (the message names the field and the file).
        OSError: a listening socket could not be bound (e.g. ``EADDRINUSE``), or a
            :class:`~trio_asgi._net.listeners.ListenError` (an ``OSError``) whose message
            names the address: a Unix path another server listens on, a descriptor that is
            not a listening socket.
        LifespanFailure: the app's lifespan startup failed (``lifespan.startup.failed``, or
            an exception with ``lifespan="on"``), did not complete within
            ``lifespan_startup_timeout``, or ``shutdown_trigger()`` returned before it
            completed; nothing was served.
        LifespanShutdownFailure: serving ended gracefully, but the app's lifespan shutdown
            failed (``lifespan.shutdown.failed``, an exception, or
            ``lifespan_shutdown_timeout``); raised once every connection is closed.
        TypeError: ``config`` is not a :class:`Config`, or ``listeners`` holds something
            that is not a ``trio.SocketListener``.
        KeyboardInterrupt: CTRL+C, delivered by trio to the task running ``serve``: one
            plain exception, not wrapped in the nurseries' ``BaseExceptionGroup``.
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
    try:
        server = _Server(app, config)
    except BaseException:
        for listener in listeners or ():
            await trio.aclose_forcefully(listener)  # serve() owns them, refused app or not
        raise
    try:
        await server.run(shutdown_trigger, reload_trigger, listeners, task_status)
    except BaseExceptionGroup as group:  # CTRL+C, wrapped by each nursery it passed through
        interrupt = sole_keyboard_interrupt(group)
        if interrupt is None:
            raise
        raise interrupt from None


class _Server:
    """The state of one :func:`serve` call: its scopes, connections and lifespan."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.config = config
        # ASGI 2 and WSGI apps are wrapped here, once: connections and lifespan call the
        # same ASGI 3 callable. An app that fits no interface is refused before any bind.
        app = adapt(app, config)
        #: The asyncio app's bridge (``loop="asyncio"``): run() hosts its loop.
        self.bridge = app if isinstance(app, AsyncioBridge) else None
        self.context = ServerContext(app=app)
        self.http11 = HTTP11Settings.from_config(config)  # what every connection reads
        # TLS: the files are read now, before any bind (ConfigError naming a bad one).
        self.reloadable_tls: ReloadableContext | None = None
        self.fixed_tls: ServerTLS | None = None
        if config.ssl_context is not None:
            self.fixed_tls = ServerTLS.from_context(config.ssl_context)
        elif config.ssl_certfile is not None:
            self.reloadable_tls = ReloadableContext(_tls_settings(config))
        self.lifespan = Lifespan(app, config.lifespan)
        self.context.state = self.lifespan.state
        self.accept_scope = trio.CancelScope()
        # Cancelled by the shutdown watcher: a shutdown requested while lifespan startup is
        # still running ends that startup (it may hang for lifespan_startup_timeout, or for
        # ever); nothing has been served, so it counts as a startup failure.
        self.startup_scope = trio.CancelScope()
        self._connections: trio.Nursery  # the connections nursery, set by _serve_connections

    async def run(
        self,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None,
        reload_trigger: Callable[[], Awaitable[Any]] | None,
        listeners: list[trio.SocketListener] | None,
        task_status: trio.TaskStatus[list[ListenAddress]],
    ) -> None:
        async with self._event_loop():
            await self._run(shutdown_trigger, reload_trigger, listeners, task_status)

    @contextlib.asynccontextmanager
    async def _event_loop(self) -> AsyncIterator[None]:
        """With ``loop="asyncio"``: the asyncio loop the app runs on, hosted in Trio for the
        block's duration; app tasks then start from a context that knows that loop."""
        if self.bridge is None:
            yield
            return
        async with self.bridge.open_loop():
            self.context.adopt_context(contextvars.copy_context())
            yield

    async def _run(
        self,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None,
        reload_trigger: Callable[[], Awaitable[Any]] | None,
        listeners: list[trio.SocketListener] | None,
        task_status: trio.TaskStatus[list[ListenAddress]],
    ) -> None:
        config = self.config
        binds: list[Bind] = []
        socket_files: list[UnixSocketFile] = []
        if listeners is None:
            binds = _binds_to_serve(config)
            listeners = await bind(binds, config.backlog, uds_permissions=config.uds_permissions)
        try:
            socket_files = unix_socket_files(binds)  # removed at the end, if still ours
            async with trio.open_nursery() as root:
                if shutdown_trigger is not None:
                    root.start_soon(
                        self._watch_for_shutdown, shutdown_trigger, name=tasks.SHUTDOWN_WATCHER.name
                    )
                if reload_trigger is not None and self.reloadable_tls is not None:
                    root.start_soon(
                        self._reload_tls,
                        reload_trigger,
                        self.reloadable_tls,
                        name=tasks.TLS_RELOADER.name,
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
                        self.context.adopt_context(self.lifespan.app_context)
                    addresses = [listener_address(listener) for listener in listeners]
                    scheme = "https" if config.tls_enabled else "http"
                    for address in addresses:
                        error_logger.info(
                            "Listening on %s (press CTRL+C to quit)", display_url(address, scheme)
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
            unlink_unix_sockets(socket_files)
        if self.lifespan.failure is not None:
            raise LifespanFailure(self.lifespan.failure)
        if self.lifespan.shutdown_failure is not None:
            raise LifespanShutdownFailure(self.lifespan.shutdown_failure)

    async def _watch_for_shutdown(self, shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
        await shutdown_trigger()
        error_logger.info("Graceful shutdown: no longer accepting connections")
        self.startup_scope.cancel()  # a no-op once startup is over
        self.accept_scope.cancel()

    async def _reload_tls(
        self, reload_trigger: Callable[[], Awaitable[Any]], tls: ReloadableContext
    ) -> None:
        """Each time ``reload_trigger()`` returns, read the TLS files again (in a worker
        thread: the event loop never waits for the disk or the key's decryption); the next
        accepted connections use them. ``ReloadableContext.reload`` logs the outcome."""
        while True:
            await reload_trigger()
            await trio.to_thread.run_sync(tls.reload)

    async def _serve_connections(self, listeners: list[trio.SocketListener]) -> None:
        async with trio.open_nursery() as connections:
            self._connections = connections
            with self.accept_scope:
                async with trio.open_nursery() as accepting:
                    for listener in listeners:
                        accepting.start_soon(
                            accept_loop,
                            listener,
                            self._start_connection,
                            name=tasks.ACCEPT_LOOP.name,
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

    def _start_connection(self, stream: trio.SocketStream) -> None:
        """For each accepted stream (synchronous, from the accept loop): its connection task
        (``handle_connection``, which always closes the stream), or past
        ``max_connections`` a 503 refusal."""
        connections = self._connections
        limit = self.config.max_connections
        tls = self.fixed_tls
        if self.reloadable_tls is not None:
            tls = self.reloadable_tls.current  # taken once: a reload changes new connections
        if limit is not None and len(self.context.connections) >= limit:
            refused: trio.abc.Stream = stream
            if tls is not None and is_tcp(stream):
                refused = trio.SSLStream(stream, tls.context, server_side=True)
            connections.start_soon(refuse_connection, refused, limit, name=tasks.REFUSAL.name)
            return
        try:
            connection = open_connection(stream, self.context, self.http11, tls)
        except Exception:  # noqa: BLE001 - a bug in one connection must not stop the server
            error_logger.exception("Unexpected error on a new connection")
            stream.socket.close()
            return
        connections.start_soon(handle_connection, connection, name=tasks.CONNECTION.name)


def _tls_settings(config: Config) -> TLSSettings:
    """The TLS files and options of ``config`` (``ssl_certfile`` is set)."""
    assert config.ssl_certfile is not None  # checked by the caller
    return TLSSettings(
        certfile=config.ssl_certfile,
        keyfile=config.ssl_keyfile,
        keyfile_password=config.ssl_keyfile_password,
        ca_certs=config.ssl_ca_certs,
        cert_reqs=config.ssl_cert_reqs,
        ciphers=config.ssl_ciphers,
    )


def _binds_to_serve(config: Config) -> list[Bind]:
    """What ``config`` names (``_net.binds.config_binds``), or, when it names no bind of its
    own (no ``bind``, ``uds`` or ``fd``) and systemd passed this process sockets
    (sd_listen_fds(3): ``LISTEN_PID`` is ours, ``LISTEN_FDS`` set), those, named from
    ``LISTEN_FDNAMES``; the variables are then unset, so children do not inherit them.

    Raises:
        ConfigError: a bad ``bind`` entry, or malformed systemd variables.
    """
    binds = config_binds(config.bind, config.uds, config.fd, config.host, config.port)
    if config.bind or config.uds is not None or config.fd is not None:
        return binds
    inherited = systemd_listen_fds(os.environ, os.getpid())
    if not inherited:
        return binds
    for variable in SYSTEMD_VARIABLES:
        os.environ.pop(variable, None)
    return [FDBind(fd, name) for fd, name in inherited]
