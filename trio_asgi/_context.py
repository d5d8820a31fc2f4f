"""What every connection of one server shares: the app, the config, the lifespan state.

One :class:`ServerContext` is made per :func:`~trio_asgi.serve` call and handed to each
connection driver; nothing here is global, so two servers in one process never share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._config import Config
from ._logging import DateHeader
from ._types import ASGIApp

__all__ = ["ServerContext"]


@dataclass(eq=False)
class ServerContext:
    """Per-server state read by every connection.

    Attributes:
        app: the ASGI 3 application.
        config: the server's :class:`~trio_asgi.Config`.
        state: the lifespan state dict; each request scope gets a shallow copy.
        date_header: the once-a-second ``Date`` value cache.
        shutting_down: set once graceful shutdown has begun. Connections then finish the
            request in flight with ``Connection: close`` and take no more.
    """

    app: ASGIApp
    config: Config
    state: dict[str, Any] = field(default_factory=dict)
    date_header: DateHeader = field(default_factory=DateHeader)
    shutting_down: bool = False
