"""One accepted connection, from the accept loop to its close: the seam between the socket
and the protocol.

``serve()``'s accept loop calls :func:`open_connection` synchronously for every accepted
stream, then spawns :func:`handle_connection` as that connection's task::

    "trio-asgi connection" (handle_connection)    the connection nursery; owns the close
    └── the protocol's tasks (HTTP/1.1 today: HTTP11Connection.start_reader), all in that nursery

What goes between ``accept()`` and the protocol goes here, in this order: the connection's
:class:`~trio_asgi._types.ConnectionInfo` (its addresses and scheme), the transport over the
stream (``_net/transport.py``), and the choice of protocol. A TLS handshake, a PROXY-protocol
prefix and the HTTP/2 choice (ALPN) are the steps still to come, each in
:func:`handle_connection` before the protocol starts.
"""

from __future__ import annotations

from typing import Final

import trio

from ._context import ServerContext
from ._h11.connection import HTTP11Connection
from ._h11.reader import LINGER_TIMEOUT
from ._h11.settings import HTTP11Settings
from ._logging import error_logger, format_address
from ._net.listeners import unix_address
from ._net.transport import open_transport
from ._types import Address, ConnectionInfo

__all__ = ["connection_info", "handle_connection", "open_connection", "refuse_connection"]


def connection_info(stream: trio.abc.Stream, context: ServerContext) -> ConnectionInfo:
    """The client and server addresses of ``stream`` and its scheme, ``"http"``.

    TCP: ``(host, port)`` each (None when the peer already reset the connection). A Unix
    socket: server ``UnixAddress(path, None)`` and client None (ASGI HTTP spec, "HTTP
    Connection Scope"). Any other stream: None and None.

    The server address is the shared tuple of :meth:`ServerContext.local_address`: a
    server has a handful, so thousands of idle connections need not hold a copy each.
    """
    client: Address | None = None
    server: Address | None = None
    if not isinstance(stream, trio.SocketStream):
        return ConnectionInfo(None, None, "http")
    if stream.socket.family == trio.socket.AF_UNIX:
        # ASGI: server is [path, None]; the client of a Unix socket has no address.
        return ConnectionInfo(None, unix_address(stream.socket.getsockname()), "http")
    if stream.socket.family in _TCP_FAMILIES:
        try:
            peer = stream.socket.getpeername()
            local = stream.socket.getsockname()
        except OSError:  # the peer reset the connection before we asked: no address
            pass
        else:
            # An IPv4 peer address is already a (str, int) pair: keep it rather than copy it.
            client = peer if len(peer) == 2 else (str(peer[0]), int(peer[1]))
            server = context.local_address(str(local[0]), int(local[1]))
    return ConnectionInfo(client, server, "http")


def open_connection(
    stream: trio.abc.Stream, context: ServerContext, settings: HTTP11Settings
) -> HTTP11Connection:
    """The synchronous first step of a connection: its info, its transport, its protocol
    object, which joins ``context.connections`` at once (so ``max_connections`` counts it
    before its task runs). Spawn :func:`handle_connection` with the result."""
    return HTTP11Connection(
        open_transport(stream), connection_info(stream, context), context, settings
    )


async def handle_connection(connection: HTTP11Connection) -> None:
    """The connection task: open the connection nursery, run the protocol in it, close.

    The task's whole body (no wrapper: every idle keep-alive connection holds its frames).
    An unexpected exception, which would be a bug in trio-asgi, is logged once and ends
    this connection only, never the server; cancellation propagates as usual.

    Resource handling:
        The transport is always closed, and the connection leaves ``connections``, when
        this returns.
    """
    try:
        async with trio.open_nursery() as nursery:
            connection.start_reader(nursery)
    except Exception:  # noqa: BLE001 - a bug in one connection must not stop the server
        error_logger.exception(
            "Unexpected error on the connection from %s", format_address(connection.client)
        )
    finally:
        connection.context.connections.discard(connection)
        await connection.close()


_TCP_FAMILIES: Final = frozenset({trio.socket.AF_INET, trio.socket.AF_INET6})

_SERVICE_UNAVAILABLE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 24\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"\r\n"
    b"503 Service Unavailable\n"
)


async def refuse_connection(stream: trio.abc.Stream, limit: int) -> None:
    """Over ``max_connections``: answer 503 without reading the request, then close.

    A lingering close (FIN, then drain for a moment) so the client reads the 503 instead of a
    reset. Bounded by ``LINGER_TIMEOUT``; the accept loop never waits for it.
    """
    error_logger.info("Connection limit (%d) reached; refused a connection with 503", limit)
    with trio.move_on_after(LINGER_TIMEOUT):
        try:
            await stream.send_all(_SERVICE_UNAVAILABLE)
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone: nothing more to tell it
    await trio.aclose_forcefully(stream)
