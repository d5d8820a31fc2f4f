"""The one app boundary: every ASGI app call (HTTP and WebSocket) goes through :func:`call_app`.

What it does for every protocol: runs ``app(scope, receive, send)`` inside the caller's
cancel scope (the scope a disconnect puts its grace deadline on); treats
:class:`~trio_asgi.ClientDisconnected` escaping the app as the client having left (nothing
to log, ASGI spec 2.4); logs any other ``Exception`` once, with its traceback and what the
app was handling; and returns the outcome, which each protocol maps to its own answer (a 500
or an abort for HTTP/1.1, close 1011 or a 500 handshake refusal for WebSocket).
Cancellation and other ``BaseException``\\ s pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ._errors import ClientDisconnected
from ._logging import error_logger, format_address
from ._types import Address, ASGIApp, Receive, Scope, Send

__all__ = ["call_app"]


async def call_app(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    cancel_scope: trio.CancelScope,
    describe: Callable[[], str],
    client: Address | None,
) -> Exception | None:
    """Call the app inside ``cancel_scope``; the exception it raised, if any, else None.

    Args:
        describe: returns what the app was handling, for the log line, e.g. ``'"GET /x"'``
            or ``'WebSocket "/chat"'``; called only when there is something to log.
        client: the peer's address, for the log line.

    The exception is logged here, once, at ERROR on ``trio_asgi.error``:
    ``Exception in ASGI application handling "GET /x" from 127.0.0.1:5000``.
    """
    with cancel_scope:
        try:
            await app(scope, receive, send)
        except ClientDisconnected:
            return None  # the app let send()'s OSError escape: the client left
        except Exception as exc:  # noqa: BLE001 - the one app boundary: log once, answer
            error_logger.error(
                "Exception in ASGI application handling %s from %s",
                describe(),
                format_address(client),
                exc_info=exc,
            )
            return exc
    return None
