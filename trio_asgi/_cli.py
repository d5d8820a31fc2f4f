"""The ``trio-asgi`` command: a thin click skin over :class:`~trio_asgi.Config` and
:func:`~trio_asgi.serve`.

Rules of this module:

* Each server option maps once to the :class:`~trio_asgi.Config` field of the same name, and
  takes its default from that field, so the numbers live in one place. Every option can also
  come from an environment variable, ``TRIO_ASGI_`` + its name (``TRIO_ASGI_PORT=9000``); the
  app from ``TRIO_ASGI_APP``.
* Only this module configures logging (a stderr handler on the ``trio_asgi`` logger, for the
  duration of the command), puts ``--app-dir`` on ``sys.path``, imports the app and chooses
  exit statuses. Library errors are turned into one-line messages here, never tracebacks.

Exit statuses::

    0  graceful shutdown completed (after SIGINT or SIGTERM)
    1  the app could not be imported (AppImportError), the server could not listen (OSError),
       or a second signal forced the shutdown
    2  bad usage: an unknown option, a bad value, or a value Config rejects (ConfigError)
    3  the app's lifespan startup failed (LifespanFailure), as uvicorn's STARTUP_FAILURE;
       also a signal that arrives before startup completed (nothing was served)
    4  served and shut down, but the app's lifespan shutdown failed (LifespanShutdownFailure)

The task tree while serving::

    trio.run(_serve_until_signalled)
    └── nursery
        ├── _watch_signals        1st SIGINT/SIGTERM: set `shutdown`; 2nd: cancel serve_scope
        └── (body) serve_scope
                   └── serve(app, config, shutdown_trigger=shutdown.wait)
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import platform
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, Final, cast, get_args

import click
import trio

from ._config import Config, HTTPMode, LifespanMode, WebSocketMode
from ._errors import AppImportError, ConfigError, LifespanFailure, LifespanShutdownFailure
from ._importer import import_app
from ._logging import format_address
from ._serve import serve
from ._types import ASGIApp
from ._version import __version__

__all__ = ["main"]

#: Exit status when the app's lifespan startup fails (uvicorn's ``STARTUP_FAILURE``).
EXIT_STARTUP_FAILURE: Final = 3
#: Exit status when serving ended but the app's lifespan shutdown failed.
EXIT_SHUTDOWN_FAILURE: Final = 4
#: Exit status for every other failure, and for a shutdown forced by a second signal.
EXIT_FAILURE: Final = 1

_LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug")
_SERVER_LOGGERS: Final = ("trio_asgi", "trio.serve_listeners")
_DEFAULTS: Final[dict[str, Any]] = {
    field.name: field.default for field in dataclasses.fields(Config)
}

logger = logging.getLogger("trio_asgi.error")


@click.command(
    "trio-asgi",
    context_settings={"auto_envvar_prefix": "TRIO_ASGI", "show_default": True},
)
@click.argument("app", envvar="TRIO_ASGI_APP")
@click.option("--host", default=_DEFAULTS["host"], show_envvar=True, help="Address to bind to.")
@click.option(
    "--port",
    type=int,
    default=_DEFAULTS["port"],
    show_envvar=True,
    help="Port to bind to (0: any free port).",
)
@click.option(
    "--root-path",
    default=_DEFAULTS["root_path"],
    show_default=False,
    show_envvar=True,
    help="Path prefix the app is mounted under behind a proxy, e.g. /api.",
)
@click.option(
    "--lifespan",
    type=click.Choice(get_args(LifespanMode)),
    default=_DEFAULTS["lifespan"],
    show_envvar=True,
    help="Run the ASGI lifespan protocol: auto (if the app supports it), on, or off.",
)
@click.option(
    "--access-log/--no-access-log",
    default=_DEFAULTS["access_log"],
    show_envvar=True,
    help="Log one line per response.",
)
@click.option(
    "--graceful-timeout",
    type=float,
    default=_DEFAULTS["graceful_timeout"],
    show_envvar=True,
    help="Seconds in-flight requests get to finish once shutdown starts (inf: no limit).",
)
@click.option(
    "--keep-alive-timeout",
    type=float,
    default=_DEFAULTS["keep_alive_timeout"],
    show_envvar=True,
    help="Seconds an idle keep-alive connection is kept open.",
)
@click.option(
    "--disconnect-timeout",
    type=float,
    default=_DEFAULTS["disconnect_timeout"],
    show_envvar=True,
    help="Seconds an app may keep running after its client disconnected.",
)
@click.option(
    "--date-header/--no-date-header",
    default=_DEFAULTS["date_header"],
    show_envvar=True,
    help="Add a Date header to responses that lack one.",
)
@click.option(
    "--server-header/--no-server-header",
    default=_DEFAULTS["server_header"],
    show_envvar=True,
    help="Add 'Server: trio-asgi' to responses that lack one.",
)
@click.option(
    "--http",
    type=click.Choice(get_args(HTTPMode)),
    default=_DEFAULTS["http"],
    show_envvar=True,
    help="HTTP/1.1 parser: auto (httptools if installed, else h11), h11 (pure Python, the "
    "reference) or httptools (faster; pip install 'trio-asgi[fast]').",
)
@click.option(
    "--ws",
    type=click.Choice(get_args(WebSocketMode)),
    default=_DEFAULTS["ws"],
    show_envvar=True,
    help="WebSocket support: auto (upgrade WebSocket handshakes) or none (serve them as HTTP).",
)
@click.option(
    "--ws-max-size",
    type=int,
    default=_DEFAULTS["ws_max_size"],
    show_envvar=True,
    help="Bytes a received WebSocket message may have; a larger one closes with code 1009.",
)
@click.option(
    "--ws-max-queue",
    type=int,
    default=_DEFAULTS["ws_max_queue"],
    show_envvar=True,
    help="Received WebSocket messages held for the app before the server stops reading.",
)
@click.option(
    "--ws-ping-interval",
    type=float,
    default=_DEFAULTS["ws_ping_interval"],
    show_envvar=True,
    help="Seconds between WebSocket keepalive pings (0: no pings).",
)
@click.option(
    "--ws-ping-timeout",
    type=float,
    default=_DEFAULTS["ws_ping_timeout"],
    show_envvar=True,
    help="Seconds a WebSocket ping waits for its pong before closing with 1011 (inf: no limit).",
)
@click.option(
    "--ws-per-message-deflate/--no-ws-per-message-deflate",
    default=_DEFAULTS["ws_per_message_deflate"],
    show_envvar=True,
    help="Offer WebSocket permessage-deflate compression to clients that ask for it.",
)
@click.option(
    "--request-header-timeout",
    type=float,
    default=_DEFAULTS["request_header_timeout"],
    show_envvar=True,
    help="Seconds a request head may take to arrive, from its first byte (inf: no limit).",
)
@click.option(
    "--body-read-timeout",
    type=float,
    default=_DEFAULTS["body_read_timeout"],
    show_envvar=True,
    help="Seconds the app waits in receive() for more request body; then 408 (inf: no limit).",
)
@click.option(
    "--lifespan-startup-timeout",
    type=float,
    default=_DEFAULTS["lifespan_startup_timeout"],
    show_envvar=True,
    help="Seconds lifespan startup may take before it counts as failed (inf: no limit).",
)
@click.option(
    "--lifespan-shutdown-timeout",
    type=float,
    default=_DEFAULTS["lifespan_shutdown_timeout"],
    show_envvar=True,
    help="Seconds lifespan shutdown may take before it is cancelled (inf: no limit).",
)
@click.option(
    "--max-header-size",
    type=int,
    default=_DEFAULTS["max_header_size"],
    show_envvar=True,
    help="Bytes a request head (request line and headers) may have; a larger one gets 431.",
)
@click.option(
    "--max-request-body-size",
    type=int,
    default=_DEFAULTS["max_request_body_size"],
    show_default="no limit",
    show_envvar=True,
    help="Bytes a request body may have; a larger one gets 413.",
)
@click.option(
    "--max-connections",
    type=int,
    default=_DEFAULTS["max_connections"],
    show_default="no limit",
    show_envvar=True,
    help="Open connections at most; one more is answered 503 and closed.",
)
@click.option(
    "--max-requests-per-connection",
    type=int,
    default=_DEFAULTS["max_requests_per_connection"],
    show_default="no limit",
    show_envvar=True,
    help="Requests served on one keep-alive connection before the server closes it.",
)
@click.option(
    "--backlog",
    type=int,
    default=_DEFAULTS["backlog"],
    show_envvar=True,
    help="Length of the listening sockets' queue of connections not yet accepted.",
)
@click.option(
    "--factory",
    is_flag=True,
    show_envvar=True,
    help="APP names a function that takes no arguments and returns the app.",
)
@click.option(
    "--app-dir",
    type=click.Path(exists=True, file_okay=False),
    default=".",
    show_envvar=True,
    help="Directory put first on sys.path before APP is imported.",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default="info",
    show_envvar=True,
    help="Level of the server's log messages on stderr.",
)
@click.version_option(
    __version__,
    "--version",
    prog_name="trio-asgi",
    message=(
        f"%(prog)s %(version)s (trio {trio.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()})"
    ),
)
@click.pass_context
def cli(
    ctx: click.Context,
    app: str,
    host: str,
    port: int,
    root_path: str,
    lifespan: str,
    access_log: bool,
    graceful_timeout: float,
    keep_alive_timeout: float,
    disconnect_timeout: float,
    date_header: bool,
    server_header: bool,
    http: str,
    ws: str,
    ws_max_size: int,
    ws_max_queue: int,
    ws_ping_interval: float,
    ws_ping_timeout: float,
    ws_per_message_deflate: bool,
    request_header_timeout: float,
    body_read_timeout: float,
    lifespan_startup_timeout: float,
    lifespan_shutdown_timeout: float,
    max_header_size: int,
    max_request_body_size: int | None,
    max_connections: int | None,
    max_requests_per_connection: int | None,
    backlog: int,
    factory: bool,
    app_dir: str,
    log_level: str,
) -> None:
    """Serve the ASGI app APP, given as "module:attribute" (e.g. "myproject.main:app").

    APP may also come from the TRIO_ASGI_APP environment variable. The first CTRL+C or
    SIGTERM shuts down gracefully; a second one stops at once.
    """
    try:
        config = Config(
            host=host,
            port=port,
            root_path=root_path,
            lifespan=cast(LifespanMode, lifespan),
            access_log=access_log,
            keep_alive_timeout=keep_alive_timeout,
            graceful_timeout=graceful_timeout,
            disconnect_timeout=disconnect_timeout,
            date_header=date_header,
            server_header=server_header,
            http=cast(HTTPMode, http),
            ws=cast(WebSocketMode, ws),
            ws_max_size=ws_max_size,
            ws_max_queue=ws_max_queue,
            ws_ping_interval=ws_ping_interval,
            ws_ping_timeout=ws_ping_timeout,
            ws_per_message_deflate=ws_per_message_deflate,
            request_header_timeout=request_header_timeout,
            body_read_timeout=body_read_timeout,
            lifespan_startup_timeout=lifespan_startup_timeout,
            lifespan_shutdown_timeout=lifespan_shutdown_timeout,
            max_header_size=max_header_size,
            max_request_body_size=max_request_body_size,
            max_connections=max_connections,
            max_requests_per_connection=max_requests_per_connection,
            backlog=backlog,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc

    with _log_to_stderr(log_level):
        sys.path.insert(0, app_dir)
        try:
            asgi_app = import_app(app, factory=factory)
        except AppImportError as exc:
            raise click.ClickException(str(exc)) from exc

        # What is alive now (the modules, the app) lives as long as the process: take it out
        # of the cyclic garbage collector's full collections, which otherwise walk all of it
        # every few thousand requests and show as tail latency (docs/performance.md).
        gc.freeze()
        try:
            graceful = trio.run(_serve_until_signalled, asgi_app, config)
        except LifespanFailure as exc:
            raise _StartupFailure(f"application startup failed: {exc.message}") from exc
        except LifespanShutdownFailure as exc:
            raise _ShutdownFailure(f"application shutdown failed: {exc.message}") from exc
        except OSError as exc:
            raise click.ClickException(
                f"could not listen on {format_address((host, port))}: {exc}"
            ) from exc
    if not graceful:
        ctx.exit(EXIT_FAILURE)


def main() -> None:
    """Run the ``trio-asgi`` command (the console-script entry point) and exit."""
    cli()


async def _serve_until_signalled(app: ASGIApp, config: Config) -> bool:
    """Serve until SIGINT or SIGTERM, then shut down; True if gracefully, False if forced.

    Error handling:
        :class:`~trio_asgi.LifespanFailure`, :class:`~trio_asgi.LifespanShutdownFailure`
        and :class:`OSError` from :func:`serve` are re-raised outside the nursery, so they
        reach the caller bare, not in an ``ExceptionGroup``.
    """
    shutdown = trio.Event()
    failure: LifespanFailure | LifespanShutdownFailure | OSError | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as serve_scope:
                nursery.start_soon(_watch_signals, signals, shutdown, serve_scope)
                try:
                    await serve(app, config, shutdown_trigger=shutdown.wait)
                except (LifespanFailure, LifespanShutdownFailure, OSError) as exc:
                    failure = exc
                finally:
                    nursery.cancel_scope.cancel()  # the watcher is done too
    if failure is not None:
        raise failure
    return not serve_scope.cancel_called  # only the watcher cancels it


async def _watch_signals(
    signals: AsyncIterator[int],
    shutdown: trio.Event,
    serve_scope: trio.CancelScope,
) -> None:
    """First signal: start the graceful shutdown. Second signal: cancel serving at once."""
    async for _ in signals:
        if not shutdown.is_set():
            logger.info("Shutting down gracefully (press CTRL+C again to force)")
            shutdown.set()
        else:
            logger.warning("Forced shutdown")
            serve_scope.cancel()
            return


class _StartupFailure(click.ClickException):
    """``Error: application startup failed: ...`` on stderr, exit status 3."""

    exit_code = EXIT_STARTUP_FAILURE


class _ShutdownFailure(click.ClickException):
    """``Error: application shutdown failed: ...`` on stderr, exit status 4."""

    exit_code = EXIT_SHUTDOWN_FAILURE


class _LevelPrefixFormatter(logging.Formatter):
    """``INFO:     message``: the level and a colon, padded to one width, as uvicorn."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.levelname + ':':<9} {record.message}"


@contextmanager
def _log_to_stderr(level: str) -> Iterator[None]:
    """Send the ``trio_asgi`` loggers to stderr at ``level`` while the block runs.

    The handler is removed and the logger restored afterwards, so calling the command more
    than once in one process (as tests do) leaves nothing behind.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefixFormatter())
    # Ours, and trio's accept loop, which logs running out of file descriptors (EMFILE).
    loggers = [logging.getLogger(name) for name in _SERVER_LOGGERS]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (saved_level, saved_propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(saved_level)
            logger.propagate = saved_propagate
