"""trio-asgi: a Trio-native ASGI server built on structured concurrency.

The public surface is small: :func:`run`, :func:`serve`, :class:`Config`, the exceptions
and ``__version__``. Everything else lives in private ``_modules``.

- ``run(app, **settings)`` serves from a script, as ``uvicorn.run``: it logs to stderr,
  prints where it listens, shuts down gracefully on CTRL+C or SIGTERM and returns (it
  raises :class:`ConfigError` for a bad setting before anything starts).
- ``serve(app, config)`` is the structured-concurrency building block: an async function
  to run in your own nursery (``nursery.start(serve, app, config)``) or with ``trio.run``.

Example::

    import trio
    import trio_asgi
    from trio_asgi import Config, serve

    async def app(scope, receive, send):
        ...

    trio_asgi.run(app)                         # http://127.0.0.1:8000, until CTRL+C
    trio_asgi.run(app, port=8080)
    trio.run(serve, app, Config(port=8080))    # the building block: no logging configured
"""

from ._config import Config
from ._errors import (
    AppImportError,
    ClientDisconnected,
    ConfigError,
    InvalidMessage,
    LifespanFailure,
    LifespanShutdownFailure,
    TrioASGIError,
    UnexpectedMessage,
)
from ._run import run
from ._serve import serve
from ._types import ListenAddress, TCPAddress
from ._version import __version__

__all__ = [
    "AppImportError",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "InvalidMessage",
    "LifespanFailure",
    "LifespanShutdownFailure",
    "ListenAddress",
    "TCPAddress",
    "TrioASGIError",
    "UnexpectedMessage",
    "__version__",
    "run",
    "serve",
]
