"""A Starlette app whose lifespan raises: Starlette sends ``lifespan.startup.failed`` with the
whole traceback as its message, then re-raises. The traceback must reach stderr once."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

MESSAGE = "database is unreachable"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError(MESSAGE)
    yield


app = Starlette(lifespan=lifespan)
