"""AsyncioBridge: an asyncio app (``Config.loop == "asyncio"``) served by the Trio server.

trio-asyncio (``pip install '.[asyncio]'``) hosts an asyncio event loop inside Trio: its
``open_loop()`` runs the loop as Trio tasks, for as long as :meth:`AsyncioBridge.open_loop`
is entered (``serve()`` enters it around its root nursery, so the loop lives exactly as long
as ``serve()``). The server keeps calling one Trio-side ASGI 3 callable, the bridge; the
bridge runs the app (ASGI 3, or ASGI 2 already adapted) as an ``asyncio.Task`` on that
loop, where ``asyncio.sleep``, ``asyncio.create_task``, Django's ASGI handler and asgiref
work as on any asyncio loop.

How one app call goes (:class:`_AppCall`)::

    Trio app task (the server's)               asyncio task on the hosted loop
    bridge(scope, receive, send)  ──create──►  app(scope, receive', send')
      waits; serves each receive'/send'  ◄───  await receive'() / send'(message)
      in this task, in its cancel scope  ───►  the result (or exception) comes back
      returns when the task is done      ◄───  app returns / raises

- ``receive'``/``send'`` are made once per call. Each hands its message to the waiting Trio
  app task and awaits an ``asyncio.Future`` the Trio task resolves: the server's
  ``receive``/``send`` run in the app's own Trio task, inside the cancel scope the server put
  on the request, with no Trio task spawned per message. When the app awaits two at once
  (Django's disconnect listener sits in ``receive()`` while the view sends), the one that
  finds the Trio task busy runs in a Trio task of the loop's own
  (trio-asyncio's ``loop.trio_as_future``).
- Cancellation goes both ways, as for a Trio app. When the server cancels the app task
  (client gone past ``disconnect_timeout``, ``request_timeout``, the end of
  ``graceful_timeout``, the hard stop) the asyncio task is cancelled: the app sees
  ``asyncio.CancelledError`` where it awaits, may clean up (even ``send()``, which then
  fails at once), and once it is done the Trio task raises its ``trio.Cancelled``. When the
  app cancels an awaited ``receive'()`` (``asyncio.wait_for``, a task it cancels), the
  server's ``receive()`` is cancelled with it. An ``asyncio.CancelledError`` that escapes
  the app while the server did not cancel it becomes a ``RuntimeError`` (a 500 logged at the
  app boundary), never a ``BaseException`` that would end the connection's nursery.

The executor bridge: trio-asyncio's ``loop.run_in_executor(executor, ...)`` accepts only
``None`` or its own ``TrioExecutor`` (it asserts), but asgiref's ``sync_to_async`` (every
sync part of Django) passes a ``concurrent.futures.ThreadPoolExecutor`` of its own, to keep
"thread sensitive" code on one thread. ``open_loop()`` builds its loop itself and takes no
loop class, so :meth:`AsyncioBridge.open_loop` gives the loop it built a
``run_in_executor`` of its own (:func:`_run_in_executor`): ``None`` and ``TrioExecutor`` go to
trio-asyncio's (a Trio worker thread); any other ``concurrent.futures.Executor`` is used as
plain asyncio uses it, ``asyncio.wrap_future(executor.submit(func, *args))``, completed on
the loop through ``call_soon_threadsafe``. Neither Django nor asgiref is changed.

The loop's exception handler: trio-asyncio's default re-raises an exception nobody
retrieved (a failed task the app forgot) into the loop's nursery, which would end
``serve()``. The bridge installs asyncio's own behaviour instead: log it on the ``asyncio``
logger, keep serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import outcome
import trio

from .._types import ASGIApp, Receive, Scope, Send

__all__ = ["AsyncioBridge"]

#: What the waiting Trio task is rescheduled with when the app's asyncio task is done.
_DONE: Final = None

#: One receive'/send' for the Trio task to serve: its future, the server's callable, and
#: the message (``None``: call it with no argument, i.e. ``receive``).
_Request = tuple["_OpFuture", Callable[..., Awaitable[Any]], Any]


class AsyncioBridge:
    """Serve an ASGI 3 callable as asyncio code on a trio-asyncio loop; see the module docs.

    Args:
        app: the ASGI 3 app (an ASGI 2 one already wrapped by ``ASGI2Adapter``).

    Resource handling:
        Calls work only inside :meth:`open_loop`; the loop, and every asyncio task the app
        left running, are closed when it exits.

    Raises:
        RuntimeError: called outside :meth:`open_loop`.
    """

    __slots__ = ("app", "loop")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop: Any = None  # the trio_asyncio.TrioEventLoop while open_loop() is entered

    @asynccontextmanager
    async def open_loop(self) -> AsyncIterator[None]:
        """Host the asyncio loop for the block's duration (``trio_asyncio.open_loop()``),
        with the executor bridge and asyncio's logging exception handler.

        Raises:
            ModuleNotFoundError: trio-asyncio is not installed (``Config`` checks first).
        """
        import trio_asyncio  # type: ignore[import-untyped]  # its import patches asyncio

        async with trio_asyncio.open_loop() as loop:
            loop.run_in_executor = functools.partial(
                _run_in_executor, loop, loop.run_in_executor, trio_asyncio.TrioExecutor
            )
            loop.set_exception_handler(_log_loop_exception)
            self.loop = loop
            try:
                yield
            finally:
                self.loop = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = self.loop
        if loop is None:
            raise RuntimeError("the asyncio app was called outside serve()'s asyncio loop")
        await _AppCall(loop, receive, send).run(self.app, scope)

    def __repr__(self) -> str:
        return f"AsyncioBridge({self.app!r})"


async def _call(call: _AppCall, app: ASGIApp, scope: Scope) -> None:
    """The asyncio task's coroutine: ``app(...)`` is called inside the task, so what the app
    does before its first ``await`` already runs as asyncio code. Its end wakes the Trio
    task directly (the task is done by the time that runs), not through a done callback,
    which would cost the loop one more callback per call."""
    try:
        await app(scope, call.receive, call.send)
    finally:
        call.task_done()


class _OpFuture(asyncio.Future[Any]):
    """The future one receive'/send' awaits. Cancelling it (the app gave up on that call:
    ``asyncio.wait_for``, a task it cancelled) cancels its serving in the Trio task at once,
    without a done callback per call."""

    __slots__ = ("scope",)

    def __init__(self, loop: Any) -> None:
        super().__init__(loop=loop)
        self.scope: trio.CancelScope | None = None  # set while the Trio task serves it

    def cancel(self, msg: Any = None) -> bool:
        if self.scope is not None:
            self.scope.cancel()
        return super().cancel(msg)


class _AppCall:
    """One app call across the bridge: the Trio side's state (see the module docs)."""

    __slots__ = (
        "_cancelled",
        "_loop",
        "_op_scope",
        "_raise_cancel",
        "_receive",
        "_send",
        "_task",
        "_trio_task",
        "_waiting",
    )

    def __init__(self, loop: Any, receive: Receive, send: Send) -> None:
        self._loop = loop
        self._receive = receive
        self._send = send
        self._trio_task = trio.lowlevel.current_task()
        self._waiting = False  # the Trio task waits for a request or the end of the task
        self._op_scope: trio.CancelScope | None = None  # of the request being served
        self._cancelled: trio.Cancelled | None = None  # the server cancelled a request
        self._raise_cancel: Callable[[], object] | None = None  # ... or the wait
        self._task: asyncio.Task[None]

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        task = self._task = self._loop.create_task(_call(self, app, scope))
        while True:
            self._waiting = True
            request: _Request | None = await trio.lowlevel.wait_task_rescheduled(self._abort)
            if request is _DONE:
                break
            await self._serve(*request)
            if task.done():
                break
        self._result(task)

    def _result(self, task: asyncio.Task[None]) -> None:
        cancelled = self._cancelled is not None or self._raise_cancel is not None
        try:
            task.result()
        except asyncio.CancelledError as exc:
            if not cancelled:
                raise RuntimeError(
                    "the asyncio app raised asyncio.CancelledError, but the server did not "
                    "cancel it"
                ) from exc
        if self._raise_cancel is not None:
            self._raise_cancel()
        if self._cancelled is not None:
            raise self._cancelled

    def _abort(self, raise_cancel: Callable[[], object]) -> trio.lowlevel.Abort:
        """The server cancelled the Trio task while it waits: cancel the asyncio task and
        keep waiting until it is done (it may still send, see the module docs)."""
        if self._raise_cancel is None and self._cancelled is None:
            self._raise_cancel = raise_cancel
            self._cancel_task()
        return trio.lowlevel.Abort.FAILED

    def _cancel_task(self) -> None:
        """Cancel the app's asyncio task, and be told when it is done even if it never ran
        (a task cancelled before its first step never reaches ``_call``'s ``finally``)."""
        self._task.cancel()
        self._task.add_done_callback(self.task_done)

    async def _serve(
        self, future: _OpFuture, call: Callable[..., Awaitable[Any]], message: Any
    ) -> None:
        """Run the server's receive or send in this Trio task, and resolve ``future``."""
        if future.done():  # the app gave up on it before it could start
            return
        if self._task.done():  # a request of a task the app left, and the app has returned
            future.cancel()
            return
        try:
            with trio.CancelScope() as self._op_scope:
                future.scope = self._op_scope
                result = await (call() if message is None else call(message))
        except trio.Cancelled as cancelled:  # the server's: re-raised once the task is done
            if self._cancelled is None and self._raise_cancel is None:
                self._cancelled = cancelled
                self._cancel_task()
            future.cancel()
        except Exception as exc:  # noqa: BLE001 - goes to the app, as its receive/send raised
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)
        finally:
            self._op_scope = future.scope = None

    # -- the asyncio side: the app's receive and send, and the task's end ------------------

    async def receive(self) -> Any:
        return await self._submit(self._receive, None)

    async def send(self, message: Any) -> None:
        await self._submit(self._send, message)

    def _submit(self, call: Callable[..., Awaitable[Any]], message: Any) -> asyncio.Future[Any]:
        if not self._waiting:  # the Trio task serves another request: one of the loop's
            args = () if message is None else (message,)
            busy: asyncio.Future[Any] = self._loop.trio_as_future(call, *args)
            return busy
        self._waiting = False
        future = _OpFuture(self._loop)
        trio.lowlevel.reschedule(self._trio_task, outcome.Value((future, call, message)))
        return future

    def task_done(self, task: object = None) -> None:
        """The app's task is done (or, as its done callback, was cancelled before it ran)."""
        if self._waiting:
            self._waiting = False
            trio.lowlevel.reschedule(self._trio_task, outcome.Value(_DONE))
        elif self._op_scope is not None:  # the app returned; a request of a task it left
            self._op_scope.cancel()


def _run_in_executor(
    loop: Any,
    trio_run_in_executor: Any,
    trio_executor: type[concurrent.futures.Executor],
    executor: concurrent.futures.Executor | None,
    func: Callable[..., Any],
    *args: Any,
) -> asyncio.Future[Any]:
    """``loop.run_in_executor`` that also takes any ``concurrent.futures.Executor``.

    ``None`` or a ``trio_asyncio.TrioExecutor``: trio-asyncio's own (a Trio worker thread).
    Another executor (asgiref's ``ThreadPoolExecutor``): submitted to it, and its future
    wrapped for the loop, as asyncio's ``BaseEventLoop.run_in_executor`` does.

    Raises:
        TypeError: ``executor`` is neither ``None`` nor a ``concurrent.futures.Executor``.
    """
    if executor is None or isinstance(executor, trio_executor):
        own: asyncio.Future[Any] = trio_run_in_executor(executor, func, *args)
        return own
    if not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, not {executor!r}")
    return asyncio.wrap_future(executor.submit(func, *args), loop=loop)


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's default: log what no one retrieved on the ``asyncio`` logger; serving goes
    on (trio-asyncio's default would raise it into the loop's nursery and end ``serve()``)."""
    asyncio.BaseEventLoop.default_exception_handler(loop, context)  # type: ignore[arg-type]
