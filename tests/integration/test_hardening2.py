"""Tier 3: issue 9's lifecycle hardening where ``serve()`` itself is the point.

A shutdown during a hanging lifespan startup, a failed lifespan shutdown (items 11, 12). The
HTTP/1.1 items are driver tests (tests/driver/test_hardening2.py).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

from trio_asgi import Config, LifespanFailure, LifespanShutdownFailure, serve

from ..http11_tools import deadlock_guard

# -- lifespan: a shutdown during startup, a failed shutdown (items 11, 12) -----------------


async def test_shutdown_during_a_hanging_startup_ends_it_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """shutdown_trigger() returning while startup hangs (no startup timeout) cancels the
    startup: serve() raises LifespanFailure at once, having served nothing."""
    deadlock_guard(nursery)
    startup_began = trio.Event()
    stop = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        startup_began.set()
        await trio.sleep_forever()

    async def request_shutdown() -> None:
        await startup_began.wait()
        stop.set()

    nursery.start_soon(request_shutdown)
    config = Config(port=0, lifespan_startup_timeout=math.inf)
    with pytest.raises(LifespanFailure, match="shutdown was requested before startup"):
        await serve(app, config, shutdown_trigger=stop.wait)
    assert trio.current_time() == 0  # at once: no timeout was waited out


@pytest.mark.parametrize("how", ["raises", "shutdown.failed"])
async def test_a_failed_lifespan_shutdown_is_reported_by_serve(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, how: str
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        if how == "raises":
            raise RuntimeError("could not flush")
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})

    async def shut_down_after_startup(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, Config(port=0), shutdown_trigger=stop.wait, task_status=task_status)

    stop = trio.Event()
    with pytest.RaisesGroup(pytest.RaisesExc(LifespanShutdownFailure, match="could not flush")):
        async with trio.open_nursery() as inner:
            await inner.start(shut_down_after_startup)
            stop.set()
