"""The lifespan task: the app's startup and shutdown (ASGI lifespan spec 2.0).

:func:`~trio_asgi.serve` starts :meth:`Lifespan.run` in its root nursery with
``nursery.start`` and waits for it to report that startup is over; only then does it accept
connections. After the connections nursery has closed, :meth:`Lifespan.shutdown` sends
``lifespan.shutdown`` and waits for the answer. The one task lives from before the first
connection to after the last one::

    Lifespan.run()  app({"type": "lifespan", ...}, receive, send)
        receive() -> lifespan.startup          send(lifespan.startup.complete | .failed)
        ... serving ...
        receive() -> lifespan.shutdown         send(lifespan.shutdown.complete | .failed)

In ``"auto"`` mode an app that raises before startup completes (most often because it does
not speak lifespan) is served without lifespan and one INFO line says so. In ``"on"`` mode
that is a startup failure.
"""

from __future__ import annotations

import contextvars
import math
from typing import Any

import trio

from ._config import LifespanMode
from ._errors import UnexpectedMessage
from ._http.messages import check_message_type
from ._http.scope import ASGI_VERSION
from ._logging import error_logger
from ._types import ASGIApp, Message

__all__ = ["Lifespan"]

LIFESPAN_SPEC_VERSION = "2.0"


class Lifespan:
    """Run the app's lifespan protocol in one task.

    Args:
        app: the ASGI application.
        mode: ``"auto"`` or ``"on"`` (the caller does not start the task for ``"off"``).

    Attributes:
        state: the lifespan ``scope["state"]`` dict the app may fill during startup; request
            scopes get shallow copies of it.
        failure: ``None``, or why startup failed, on one line: the app's ``message`` (its
            last line when it is a traceback, as Starlette sends), or the exception. The
            whole message is logged once, here; :class:`~trio_asgi.LifespanFailure` and the
            command's ``Error:`` line carry only this line.
        shutdown_failure: ``None``, or why shutdown failed, on one line as ``failure``: the
            app's ``lifespan.shutdown.failed`` message, or an exception it raised after
            startup.
    """

    def __init__(self, app: ASGIApp, mode: LifespanMode) -> None:
        self._app = app
        self._mode = mode
        self.state: dict[str, Any] = {}
        self.failure: str | None = None
        self.shutdown_failure: str | None = None
        #: the lifespan task's context as startup completed (the context variables the app
        #: set during startup included), or None before that: every app task starts from
        #: its own copy of it (ServerContext.app_context).
        self.app_context: contextvars.Context | None = None
        self._startup_sent = False
        self._startup_over = False
        self._task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        self._shutdown_requested = trio.Event()
        self._shutdown_sent = False
        self._shutdown_over = trio.Event()
        self._running = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The lifespan task. Reports ``started`` once startup succeeded, failed, or was skipped.

        Never raises for the app's sake: failures are recorded in :attr:`failure` and logged.
        """
        self._task_status = task_status
        self._running = True
        scope = {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        error_logger.info("Waiting for application startup.")
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:  # noqa: BLE001 - the lifespan app boundary: log once
            self._on_app_error(exc)
        else:
            if not self._startup_over:
                error_logger.info(
                    "ASGI 'lifespan' protocol appears unsupported (the app returned without "
                    "completing startup); serving without it."
                )
        finally:
            self._running = False
            self._shutdown_over.set()
        # Not in the finally: a task cancelled during startup (lifespan_startup_timeout)
        # must not report started while it unwinds.
        self._end_startup()

    def _on_app_error(self, exc: Exception) -> None:
        if self.failure is not None:
            return  # the app already reported startup.failed; its message was logged
        if self._startup_over:
            # Whether it came during shutdown or earlier, the app's shutdown did not run
            # to completion.
            self.shutdown_failure = f"{type(exc).__name__}: {exc}"
            error_logger.error("Exception in the 'lifespan' protocol", exc_info=exc)
        elif self._mode == "auto":
            error_logger.info(
                "ASGI 'lifespan' protocol appears unsupported (%s: %s); serving without it.",
                type(exc).__name__,
                exc,
            )
        else:
            self.failure = f"{type(exc).__name__}: {exc}"
            error_logger.error("Exception in the 'lifespan' startup", exc_info=exc)

    def _end_startup(self) -> None:
        if not self._startup_over:
            self._startup_over = True
            self._task_status.started()

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait until the app answers or returns."""
        if not self._running:
            return
        error_logger.info("Waiting for application shutdown.")
        self._shutdown_requested.set()
        await self._shutdown_over.wait()

    async def _receive(self) -> Message:
        if not self._startup_sent:
            self._startup_sent = True
            return {"type": "lifespan.startup"}
        await self._shutdown_requested.wait()
        if not self._shutdown_sent:
            self._shutdown_sent = True
            return {"type": "lifespan.shutdown"}
        await trio.sleep_forever()  # nothing follows shutdown; serve() cancels this task

    async def _send(self, message: Message) -> None:
        message_type = check_message_type(message)
        if trio.current_effective_deadline() == -math.inf:
            # serve() is being cancelled (the hard stop). Frameworks report that as
            # "shutdown.failed" on their way out; raising here would replace the Cancelled.
            error_logger.debug("Lifespan message %r during cancellation ignored", message_type)
            return
        if message_type in ("lifespan.startup.complete", "lifespan.startup.failed"):
            if self._startup_over or not self._startup_sent:
                raise UnexpectedMessage(f"Unexpected ASGI message {message_type!r}.")
            if message_type == "lifespan.startup.failed":
                text = str(message.get("message", "")) or "startup failed"
                self.failure = _summary(text)
                error_logger.error("Application startup failed: %s", text)
            else:
                error_logger.info("Application startup complete.")
                self.app_context = contextvars.copy_context()
            self._end_startup()
        elif message_type in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if not self._shutdown_sent or self._shutdown_over.is_set():
                raise UnexpectedMessage(f"Unexpected ASGI message {message_type!r}.")
            if message_type == "lifespan.shutdown.failed":
                text = str(message.get("message", "")) or "shutdown failed"
                self.shutdown_failure = _summary(text)
                error_logger.error("Application shutdown failed: %s", text)
            else:
                error_logger.info("Application shutdown complete.")
            self._shutdown_over.set()
        else:
            raise UnexpectedMessage(
                f"Expected a 'lifespan.*' ASGI message, but got {message_type!r}."
            )


def _summary(message: str) -> str:
    """One line for a ``*.failed`` message: itself, or the last non-blank line of a
    multi-line one (``"RuntimeError: database is unreachable"`` for a traceback)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message
