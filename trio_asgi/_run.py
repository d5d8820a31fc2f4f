"""``trio_asgi.run(app, **settings)``: serve from a script, as ``uvicorn.run`` does.

A front end like the ``trio-asgi`` command, for code that starts the server itself: it
builds the :class:`~trio_asgi.Config`, logs to stderr, and runs :func:`~trio_asgi.serve`
until SIGINT or SIGTERM with the command's own signal handling and logging
(``trio_asgi._standalone``). Unlike the command it never exits the process: it returns, or
raises what ``serve()`` raises.
"""

from __future__ import annotations

from typing import Any

import trio

from ._config import Config
from ._importer import import_app
from ._serve import serve
from ._standalone import log_to_stderr, serve_until_signalled
from ._types import ASGIApp

__all__ = ["run"]


def run(
    app: ASGIApp | str,
    config: Config | None = None,
    *,
    log_level: str | None = "info",
    **settings: Any,
) -> None:
    """Serve ``app`` until CTRL+C or SIGTERM, then shut down gracefully and return.

    Blocks the calling thread (which must be the main thread, outside any ``trio.run``) for
    as long as the server runs. The first SIGINT or SIGTERM starts the graceful shutdown
    (:func:`~trio_asgi.serve`'s module docs: no new connections, requests in flight finish
    within ``graceful_timeout`` seconds, then lifespan shutdown); a second one stops at once.
    Where it listens is logged (``INFO:     Listening on http://127.0.0.1:8000 ...``).
    Inside your own Trio program, use :func:`~trio_asgi.serve`, the building block.

    Args:
        app: the application (ASGI 3, ASGI 2 or WSGI, as ``interface`` says; ``"auto"``
            tells them apart), or an import string ``"module:attribute"`` naming it
            (imported as the command does, from ``sys.path`` as it is).
        config: the settings; give either ``config`` or ``settings``, not both.
        log_level: ``"critical"``, ``"error"``, ``"warning"``, ``"info"`` (the default) or
            ``"debug"``: the ``trio_asgi`` loggers print to stderr at that level while it
            runs, as the command's ``--log-level``. ``None``: leave logging as it is
            configured (the server's lines then reach your handlers, if any).
        **settings: :class:`~trio_asgi.Config` fields, e.g. ``port=8080``, ``host="::1"``.

    Raises:
        ConfigError: a setting :class:`~trio_asgi.Config` rejects; raised before anything
            starts.
        TypeError: an unknown setting, both ``config`` and ``settings``, or ``config`` is not
            a :class:`~trio_asgi.Config`.
        ValueError: ``log_level`` is not one of the levels above.
        AppImportError: ``app`` is an import string that names no app.
        OSError: a listening socket could not be bound (e.g. ``EADDRINUSE``).
        LifespanFailure: the app's lifespan startup failed; nothing was served.
        LifespanShutdownFailure: served and shut down, but the app's lifespan shutdown failed.
        KeyboardInterrupt: a second CTRL+C (or SIGTERM) forced the shutdown: requests in
            flight were cancelled and lifespan shutdown did not run.
        RuntimeError: called from a thread other than the main thread, or inside
            ``trio.run``.

    Example::

        import trio_asgi

        async def app(scope, receive, send):
            ...

        if __name__ == "__main__":
            trio_asgi.run(app, port=8080)    # http://127.0.0.1:8080, until CTRL+C
    """
    if config is None:
        config = Config(**settings)
    elif settings:
        raise TypeError(f"give config or settings, not both (settings: {', '.join(settings)})")
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a trio_asgi.Config, not {type(config).__name__}")
    if isinstance(app, str):
        app = import_app(app)
    if log_level is None:
        graceful = trio.run(serve_until_signalled, serve, app, config)
    else:
        with log_to_stderr(log_level):
            graceful = trio.run(serve_until_signalled, serve, app, config)
    if not graceful:
        raise KeyboardInterrupt("forced shutdown")
