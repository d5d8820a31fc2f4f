"""What a process that serves needs around :func:`~trio_asgi.serve`: stderr logging, the
signal handling, and one clean ``KeyboardInterrupt``.

Shared by :func:`trio_asgi.run` and the ``trio-asgi`` command, so the two log the same lines
and shut down the same way. Library code (``serve()``) uses only
:func:`sole_keyboard_interrupt`; the rest is for the two front ends, which alone configure
logging.

The task tree while serving::

    trio.run(serve_until_signalled)
    └── nursery
        ├── watch_signals          1st SIGINT/SIGTERM: set `shutdown`; 2nd: cancel serve_scope
        └── (body) serve_scope
                   └── serve(app, config, shutdown_trigger=shutdown.wait,
                             reload_trigger=<the next SIGHUP>)   (with TLS files only)

SIGHUP is taken only when the config serves TLS from files (``ssl_certfile``): each one
reads the certificate, key and CA files again (``serve``'s ``reload_trigger``). Otherwise
SIGHUP keeps its default meaning (a hangup ends the process).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Protocol

import trio

from ._config import Config
from ._errors import AppImportError, ConfigError, LifespanFailure, LifespanShutdownFailure
from ._types import ASGIApp

if sys.version_info < (3, 11):  # pragma: no cover - the builtin from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "LOG_LEVELS",
    "ServeFunction",
    "log_to_stderr",
    "serve_until_signalled",
    "sole_keyboard_interrupt",
    "watch_signals",
]

#: The ``log_level`` values, lowest volume first (case-insensitive).
LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug")
#: Ours, and trio's accept loop, which logs running out of file descriptors (EMFILE).
_SERVER_LOGGERS: Final = ("trio_asgi", "trio.serve_listeners")

logger = logging.getLogger("trio_asgi.error")


class ServeFunction(Protocol):
    """What a front end calls to serve: :func:`trio_asgi.serve`'s signature, as they use it."""

    def __call__(
        self,
        app: ASGIApp,
        config: Config,
        *,
        shutdown_trigger: Callable[[], Awaitable[Any]],
        reload_trigger: Callable[[], Awaitable[Any]] | None = None,
    ) -> Awaitable[None]: ...


def sole_keyboard_interrupt(group: BaseExceptionGroup[BaseException]) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` in ``group`` if it is the group's only leaf, else ``None``.

    Trio raises CTRL+C's ``KeyboardInterrupt`` in the main task, which waits in a nursery;
    every nursery it passes through wraps it in another ``BaseExceptionGroup``. ``serve()``
    re-raises what this returns (``raise interrupt from None``), so ``trio.run(serve, app)``
    ends in one plain ``KeyboardInterrupt`` traceback, as any interrupted Python program.
    """
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        if len(leaf.exceptions) != 1:
            return None
        leaf = leaf.exceptions[0]
    return leaf if isinstance(leaf, KeyboardInterrupt) else None


class _LevelPrefixFormatter(logging.Formatter):
    """``INFO:     message``: the level and a colon, padded to one width, as uvicorn."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.levelname + ':':<9} {record.message}"


@contextmanager
def log_to_stderr(level: str) -> Iterator[None]:
    """Send the ``trio_asgi`` loggers to stderr at ``level`` (one of :data:`LOG_LEVELS`, any
    case) while the block runs.

    The handler is removed and the loggers restored afterwards, so running it more than once
    in one process (as tests do) leaves nothing behind.

    Raises:
        ValueError: ``level`` is not one of :data:`LOG_LEVELS`.
    """
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefixFormatter())
    loggers = [logging.getLogger(name) for name in _SERVER_LOGGERS]
    saved = [(each.level, each.propagate) for each in loggers]
    for each in loggers:
        each.addHandler(handler)
        each.setLevel(level.upper())
        each.propagate = False
    try:
        yield
    finally:
        for each, (saved_level, saved_propagate) in zip(loggers, saved, strict=True):
            each.removeHandler(handler)
            each.setLevel(saved_level)
            each.propagate = saved_propagate


async def serve_until_signalled(serve: ServeFunction, app: ASGIApp, config: Config) -> bool:
    """Serve until SIGINT or SIGTERM, then shut down; True if gracefully, False if forced.
    With TLS files, each SIGHUP reloads them (see the module docstring).

    Must run in the main thread (``trio.open_signal_receiver``'s rule).

    Error handling:
        :class:`~trio_asgi.AppImportError` (the app fits no interface),
        :class:`~trio_asgi.ConfigError` (a TLS file cannot be used, systemd's variables are
        malformed), :class:`~trio_asgi.LifespanFailure`, :class:`~trio_asgi.LifespanShutdownFailure`
        and :class:`OSError` from :func:`serve` are re-raised outside the nursery, so they
        reach the caller bare, not in an ``ExceptionGroup``.
    """
    shutdown = trio.Event()
    failure: (
        AppImportError | ConfigError | LifespanFailure | LifespanShutdownFailure | OSError | None
    ) = None
    with contextlib.ExitStack() as stack:
        signals = stack.enter_context(trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM))
        reload_trigger = None
        if config.ssl_certfile is not None:  # TLS files: SIGHUP reads them again
            hangups = stack.enter_context(trio.open_signal_receiver(signal.SIGHUP))
            reload_trigger = functools.partial(anext, hangups)
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as serve_scope:
                nursery.start_soon(watch_signals, signals, shutdown, serve_scope)
                try:
                    await serve(
                        app, config, shutdown_trigger=shutdown.wait, reload_trigger=reload_trigger
                    )
                except (
                    AppImportError,
                    ConfigError,
                    LifespanFailure,
                    LifespanShutdownFailure,
                    OSError,
                ) as exc:
                    failure = exc
                finally:
                    nursery.cancel_scope.cancel()  # the watcher is done too
    if failure is not None:
        raise failure
    return not serve_scope.cancel_called  # only the watcher cancels it


async def watch_signals(
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
