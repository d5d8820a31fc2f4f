"""Type aliases for the ASGI 3.0 callable interface (ASGI spec, "Applications")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

__all__ = [
    "ASGIApp",
    "Address",
    "ConnectionInfo",
    "ListenAddress",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "TCPAddress",
    "UnixAddress",
]

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


class TCPAddress(NamedTuple):
    """Where a TCP listening socket is bound: ``(host, port)``, a tuple, so
    ``host, port = address`` works. What ``await nursery.start(serve, ...)`` reports for
    each TCP listener (with ``port=0``, the port the system chose).

    Attributes:
        host (str): the bound address, e.g. ``"127.0.0.1"`` or ``"::1"``.
        port (int): the bound port.
    """

    host: str
    port: int


class UnixAddress(NamedTuple):
    """Where a Unix domain listening socket is bound: ``(path, None)``, the form of
    ``scope["server"]`` for a Unix socket (ASGI HTTP spec, "HTTP Connection Scope": "a
    ``[path, None]`` where path is that of the unix socket"). Two items, so code that
    unpacks ``host, port = address`` keeps working; check ``isinstance`` to tell them apart.

    Attributes:
        path (str): the socket file's path as bound (Linux's abstract names start with
            ``"@"``).
        port (None): always None.
    """

    path: str
    port: None = None


#: An address as ``scope["client"]`` and ``scope["server"]`` carry it: ``(host, port)`` of
#: a TCP peer, or a :class:`UnixAddress` ``(path, None)`` for the server end of a Unix
#: socket (ASGI HTTP spec, "HTTP Connection Scope"; a Unix socket's ``client`` is None).
Address = tuple[str, int] | UnixAddress


#: One listening socket's address, as ``serve()`` reports it to ``task_status``: a
#: ``TCPAddress`` for TCP (inherited TCP descriptors included), a ``UnixAddress`` for a Unix
#: socket. Each is a two-item named tuple, so code that handles a ``TCPAddress`` keeps working.
ListenAddress = TCPAddress | UnixAddress


class ConnectionInfo(NamedTuple):
    """What is known of one accepted connection before any protocol runs on it: the values
    every protocol's scope carries (ASGI HTTP spec 2.5, "HTTP Connection Scope").

    Attributes:
        client (Address | None): the peer's ``(host, port)``, or None if unknown.
        server (Address | None): the local ``(host, port)`` it arrived on, the
            ``UnixAddress`` ``(path, None)`` of a Unix socket, or None.
        scheme (str): ``"http"`` (``"https"`` once TLS terminates here).
    """

    client: Address | None
    server: Address | None
    scheme: str
