"""ASGI2Adapter: an ASGI 2 "double callable" app served through the ASGI 3 boundary.

ASGI spec, "Legacy Applications": an ASGI 2 app is called with the scope and returns the
coroutine function (an instance, or a closure) that is awaited with ``receive, send``. The
adapter is that call, made per connection scope (``http``, ``websocket`` and ``lifespan``
alike). The app sees ``scope["asgi"]["version"] == "2.0"``, in its own shallow copy of the
scope: the server's dicts are not changed (the ``state`` dict is the same object, so what
lifespan startup puts there still reaches every request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from .._types import Receive, Scope, Send

__all__ = ["ASGI2Adapter", "ASGI2App"]

#: ``scope["asgi"]["version"]`` an ASGI 2 app is given.
ASGI2_VERSION: Final = "2.0"

#: An ASGI 2 app: ``instance = app(scope)``, then ``await instance(receive, send)``.
ASGI2App = Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]


class ASGI2Adapter:
    """Wrap an ASGI 2 app as an ASGI 3 callable.

    Args:
        app: the ASGI 2 app, e.g. a class whose ``__init__`` takes ``scope`` and whose
            ``async __call__`` takes ``receive, send``.

    Error handling:
        Whatever ``app(scope)`` or the awaited instance raises propagates unchanged to the
        app boundary, as an ASGI 3 app's exception would.
    """

    __slots__ = ("app",)

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asgi: dict[str, Any] = {**scope.get("asgi", {}), "version": ASGI2_VERSION}
        instance = self.app({**scope, "asgi": asgi})
        await instance(receive, send)

    def __repr__(self) -> str:
        return f"ASGI2Adapter({self.app!r})"
