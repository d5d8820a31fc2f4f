"""Listening sockets: binding them, the accept loop, and the address each one reports.

:func:`accept_loop` runs as the "trio-asgi accept loop" task, one per listener, inside
``serve()``'s accept cancel scope. It hands every accepted stream to a synchronous callback
(``serve()`` decides there whether the connection is served or refused), so accepting never
waits for a connection.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Final

import trio

from .._logging import error_logger
from .._types import ListenAddress, TCPAddress

__all__ = ["ACCEPT_BATCH", "accept_loop", "bind_tcp", "listener_address"]

#: Connections accepted per pass of the scheduler at most (see accept_loop).
ACCEPT_BATCH: Final = 64
#: accept(2) errors that mean the system is out of a resource, not that the listener broke
#: (the list trio.serve_listeners uses).
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_RETRY_DELAY: Final = 0.1  # seconds


async def bind_tcp(host: str, port: int, backlog: int) -> list[trio.SocketListener]:
    """Listening TCP sockets for ``host`` and ``port`` (``trio.open_tcp_listeners``: one
    per address ``host`` resolves to; port 0 picks a free port).

    Raises:
        OSError: a socket could not be bound (e.g. ``EADDRINUSE``).
    """
    return await trio.open_tcp_listeners(port, host=host, backlog=backlog)


def listener_address(listener: trio.SocketListener) -> ListenAddress:
    """Where ``listener`` is bound, as ``serve()`` reports it to ``task_status``."""
    host, port = listener.socket.getsockname()[:2]
    return TCPAddress(str(host), int(port))


async def accept_loop(
    listener: trio.SocketListener, on_accept: Callable[[trio.SocketStream], None]
) -> None:
    """Accept connections on ``listener`` until cancelled, calling ``on_accept(stream)``
    (synchronous; it owns the stream from then on) for each. Closes ``listener`` at the end.

    The loop of :func:`trio.serve_listeners`, except that closing each stream is left to
    ``on_accept``'s side, sparing a second close per connection, and that connections come
    in batches: after each awaited accept, up to ``ACCEPT_BATCH - 1`` more that are already
    waiting are accepted without a checkpoint (as asyncio accepts a batch per readiness
    event). Trio's ``accept()`` yields after every connection, so under load each new
    connection waited for a whole pass of the scheduler over the busy ones: a storm of 256
    new connections took seconds to be answered. The batch is taken through a second
    descriptor of the listening socket (``dup``), closed with the listener.

    ``EMFILE``, ``ENFILE``, ``ENOMEM`` and ``ENOBUFS`` are logged at ERROR and ``accept()``
    is tried again after 0.1 s.

    Raises:
        OSError: any other error from ``accept()``.
    """
    async with listener:
        batch = socket.socket(fileno=os.dup(listener.socket.fileno()))
        with batch:
            batch.setblocking(False)  # shared with the listener's; never wait on it
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    # Out of file descriptors or memory: wait for connections to close.
                    error_logger.error(
                        "accept returned %s (%s); retrying in %s s",
                        errno.errorcode[exc.errno],
                        os.strerror(exc.errno),
                        _ACCEPT_RETRY_DELAY,
                    )
                    await trio.sleep(_ACCEPT_RETRY_DELAY)
                    continue
                on_accept(stream)
                _accept_waiting(batch, on_accept)


def _accept_waiting(batch: socket.socket, on_accept: Callable[[trio.SocketStream], None]) -> None:
    """Accept up to ``ACCEPT_BATCH - 1`` connections already waiting, synchronously.

    Any error ends the batch: none waiting (``BlockingIOError``) or any other, which the
    next awaited accept meets again and handles (EMFILE and the like).
    """
    for _ in range(ACCEPT_BATCH - 1):
        try:
            sock, _ = batch.accept()
        except OSError:
            return
        on_accept(trio.SocketStream(trio.socket.from_stdlib_socket(sock)))
