"""Type aliases for the ASGI 3.0 callable interface (ASGI spec, "Applications")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

#: The connection scope: ``{"type": "http", "path": "/", ...}``.
Scope = MutableMapping[str, Any]
#: One event dict, ``{"type": "http.request", "body": b"", ...}``.
Message = MutableMapping[str, Any]
#: ``await receive()`` returns the next event from the client.
Receive = Callable[[], Awaitable[Message]]
#: ``await send(message)`` sends one event to the client.
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application: ``await app(scope, receive, send)``.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
