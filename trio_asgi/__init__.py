"""trio-asgi: a Trio-native ASGI server built on structured concurrency.

The public surface is small: :func:`serve`, :class:`Config`, the exceptions and
``__version__``. Everything else lives in private ``_modules``.

Example::

    import trio
    from trio_asgi import Config, serve

    async def app(scope, receive, send):
        ...

    trio.run(serve, app)                       # http://127.0.0.1:8000
    trio.run(serve, app, Config(port=8080))
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
    "serve",
]
