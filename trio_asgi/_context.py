"""What every connection of one server shares: the app, the config, the lifespan state.

One :class:`ServerContext` is made per :func:`~trio_asgi.serve` call and handed to each
connection driver; nothing here is global, so two servers in one process never share state.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from ._app import FirstRunHints, server_hints
from ._types import ASGIApp

__all__ = ["Connection", "ServerContext"]


class Connection(Protocol):
    """What the server needs of an open connection (an ``HTTP11Connection`` today)."""

    def begin_shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the response in flight."""

    @property
    def is_idle(self) -> bool:
        """No request is in progress and none has begun to arrive."""


@dataclass(eq=False)
class ServerContext:
    """Per-server state read by every connection.

    Attributes:
        app: the ASGI 3 application.
        state: the lifespan state dict; each request scope gets a shallow copy.
        shutting_down: set once graceful shutdown has begun. Connections then finish the
            request in flight with ``Connection: close`` and take no more.
        app_context: the context every app task starts from, a copy each
            (:meth:`spawn_app`): the lifespan task's as startup completed, so the context
            variables the app set there are set; without lifespan, the context ``serve()``
            was called in. Never the context of whichever task spawns the app task.
        connections: the open HTTP/1.1 connections (each adds itself when made and leaves
            when its ``handle_connection`` task ends): graceful shutdown and
            ``max_connections`` use it.
        local_addresses: one ``(host, port)`` tuple per local address connections arrived
            on, shared by all of them as ``scope["server"]`` (see :meth:`local_address`).
        hints: what this server has told its user about a failing app (the first-run
            asyncio hint, ``_app.FirstRunHints``); set in :attr:`app_context` as
            ``_app.server_hints``, so ``call_app`` finds this server's.
    """

    app: ASGIApp
    state: dict[str, Any] = field(default_factory=dict)
    shutting_down: bool = False
    app_context: contextvars.Context = field(default_factory=contextvars.copy_context)
    connections: set[Connection] = field(default_factory=set)
    local_addresses: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    hints: FirstRunHints = field(default_factory=FirstRunHints)

    def __post_init__(self) -> None:
        self.adopt_context(self.app_context)

    def adopt_context(self, context: contextvars.Context) -> None:
        """Make ``context`` the one app tasks start from (:attr:`app_context`), with this
        server's :attr:`hints` set in it."""
        context.run(server_hints.set, self.hints)
        self.app_context = context

    def local_address(self, host: str, port: int) -> tuple[str, int]:
        """The shared ``(host, port)`` tuple for a connection's local address: a server has
        a handful, so thousands of idle connections need not hold a copy each."""
        address = (host, port)
        return self.local_addresses.setdefault(address, address)

    def spawn_app(
        self,
        nursery: trio.Nursery,
        async_fn: Callable[..., Awaitable[object]],
        *args: object,
        name: str,
    ) -> None:
        """Start an app task in ``nursery`` from a fresh copy of :attr:`app_context`.

        Trio gives a new task a copy of its spawner's context. The next pipelined request's
        app task is spawned from inside the previous request's final ``send()``, so without
        this it would inherit that request's context variables (a user, a tenant, a trace
        span). ``Context.run`` makes the copy Trio takes the clean one instead.
        """
        self.app_context.run(nursery.start_soon, async_fn, *args, name=name)
