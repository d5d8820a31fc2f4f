"""What every connection of one server shares: the app, the config, the lifespan state.

One :class:`ServerContext` is made per :func:`~trio_asgi.serve` call and handed to each
connection driver; nothing here is global, so two servers in one process never share state.
"""

from __future__ import annotations

import contextvars
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
        context_values: the context variables the app set during lifespan startup; each app
            task sets them in its own context before calling the app.
    """

    app: ASGIApp
    config: Config
    state: dict[str, Any] = field(default_factory=dict)
    date_header: DateHeader = field(default_factory=DateHeader)
    shutting_down: bool = False
    context_values: list[tuple[contextvars.ContextVar[Any], Any]] = field(default_factory=list)

    def enter_app_context(self) -> None:
        """In a new app task: set what lifespan startup set (the task's context is its own)."""
        for var, value in self.context_values:
            var.set(value)
