"""Placeholder: serve() is being written."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._config import Config
from ._types import ASGIApp


async def serve(
    app: ASGIApp,
    config: Config | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    raise NotImplementedError
