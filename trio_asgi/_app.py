"""The one app boundary: every ASGI app call (HTTP and WebSocket) goes through :func:`call_app`.

What it does for every protocol: runs ``app(scope, receive, send)`` inside the caller's
cancel scope (the scope a disconnect puts its grace deadline on); treats
:class:`~trio_asgi.ClientDisconnected` escaping the app as the client having left (nothing
to log, ASGI spec 2.4), also when the app turned it into an error of its own (Starlette's
``ClientDisconnect``: one DEBUG line); logs any other ``Exception`` once, with its
traceback and what the app was handling; and returns the outcome, which each protocol maps
to its own answer (a 500 or an abort for HTTP/1.1, close 1011 or a 500 handshake refusal
for WebSocket).
Cancellation and other ``BaseException``\\ s pass through untouched.

The first-run hint: an app that needs asyncio, served on Trio (``loop="trio"``), fails every
request with ``RuntimeError: no running event loop`` or trio's ``TypeError: trio.run received
unrecognized yield message ...``. The first such failure of a server logs one more line, on
``trio_asgi.error``, that says to serve it with ``--loop asyncio``. Whether that was said is
per server, in its :class:`FirstRunHints` (held by ``ServerContext``, which sets it in the
context every app task starts from: :data:`server_hints`); it is looked at only when the app
has raised, so a request that succeeds pays nothing for it.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Final

import trio

if sys.version_info < (3, 11):  # pragma: no cover - the builtin from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from ._errors import ClientDisconnected
from ._logging import error_logger, format_address
from ._types import Address, ASGIApp, Receive, Scope, Send

__all__ = ["FirstRunHints", "call_app", "server_hints"]

#: Text of the exceptions an asyncio-only app raises when it runs on Trio: asyncio's
#: ``get_running_loop()`` (``asyncio.sleep``, ``asyncio.Event().wait()``, ...) and
#: ``get_event_loop()`` outside a loop, and trio's answer to an awaited asyncio future
#: (``TypeError``: "trio.run received unrecognized yield message <Future pending>. Are you
#: trying to use a library written for some other framework like asyncio? ...").
_ASYNCIO_SIGNS: Final = (
    "no running event loop",
    "no current event loop",
    "unrecognized yield message",
)
#: How deep :func:`needs_asyncio` looks through causes, contexts and exception groups.
_MAX_DEPTH: Final = 8


class FirstRunHints:
    """What one server has already told its user about a failing app (one per server).

    Attributes:
        asyncio_said: the "serve it with --loop asyncio" line has been logged.
    """

    __slots__ = ("asyncio_said",)

    def __init__(self) -> None:
        self.asyncio_said = False

    def note_failure(self, exc: BaseException) -> None:
        """Log the asyncio hint once if ``exc`` shows the app needs asyncio."""
        if self.asyncio_said or not needs_asyncio(exc):
            return
        self.asyncio_said = True
        error_logger.error(
            "The app uses asyncio, which does not run on Trio as it is: serve it with "
            '--loop asyncio (Config(loop="asyncio"); needs trio-asyncio: '
            "pip install '.[asyncio]')"
        )


#: The :class:`FirstRunHints` of the server an app task belongs to: ``ServerContext`` sets it
#: in the context every app task is started from, so each server has its own, and
#: :func:`call_app` reads it only when the app has raised. ``None``: no hints (an app called
#: outside ``serve()``).
server_hints: contextvars.ContextVar[FirstRunHints | None] = contextvars.ContextVar(
    "trio_asgi_server_hints", default=None
)


def _linked(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what caused it (``__cause__``, ``__context__``) and the members of exception
    groups, each once, at most :data:`_MAX_DEPTH` links away."""
    pending: list[tuple[BaseException, int]] = [(exc, 0)]
    seen: set[int] = set()
    while pending:
        current, depth = pending.pop()
        if id(current) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend((inner, depth + 1) for inner in current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append((linked, depth + 1))


def needs_asyncio(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, or one in its exception group) is what an asyncio
    app raises when it runs on Trio (:data:`_ASYNCIO_SIGNS`)."""
    return any(
        isinstance(current, (RuntimeError, TypeError))
        and any(sign in str(current) for sign in _ASYNCIO_SIGNS)
        for current in _linked(exc)
    )


def left_with_the_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised because the client left: ``send()``'s
    :class:`~trio_asgi.ClientDisconnected` is in its causes. Starlette (and so FastAPI)
    turns it into ``starlette.requests.ClientDisconnect``, a plain ``Exception`` raised
    while handling ours, and lets that escape the app."""
    return any(isinstance(current, ClientDisconnected) for current in _linked(exc))


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
            if left_with_the_client(exc):  # the same, turned into the framework's own error
                error_logger.debug(
                    "The client left while the app handled %s; it raised %r",
                    describe(),
                    exc,
                    exc_info=exc,  # a bug in the app's cleanup shows at --log-level debug
                )
                return None
            error_logger.error(
                "Exception in ASGI application handling %s from %s",
                describe(),
                format_address(client),
                exc_info=exc,
            )
            hints = server_hints.get()
            if hints is not None:
                hints.note_failure(exc)
            return exc
    return None
