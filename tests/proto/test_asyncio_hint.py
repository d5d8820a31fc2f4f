"""Tier 1: the first-run asyncio hint (``trio_asgi._app``): which exceptions mean "this app
needs asyncio", and that one server says so once.

The exception texts are the ones asyncio and trio really raise (``needs_asyncio`` is checked
against them here, by running asyncio code on Trio), so a change of wording in either is
caught.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys

import pytest

from trio_asgi import Config, ConfigError
from trio_asgi._app import FirstRunHints, needs_asyncio, server_hints
from trio_asgi._context import ServerContext

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


async def raised_by(fn: object) -> BaseException:
    try:
        await fn()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


async def test_what_asyncio_code_raises_on_trio_is_recognised() -> None:
    no_loop = await raised_by(lambda: asyncio.sleep(1))
    assert isinstance(no_loop, RuntimeError)
    assert str(no_loop) == "no running event loop"
    bare_yield = await raised_by(lambda: asyncio.sleep(0))
    assert isinstance(bare_yield, TypeError)
    assert "unrecognized yield message" in str(bare_yield)
    for exc in (no_loop, bare_yield):
        assert needs_asyncio(exc)


def wrapped(inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise ValueError("the framework's own error") from exc
    except ValueError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError("no running event loop"), True),
        (RuntimeError("There is no current event loop in thread 'x'."), True),
        (wrapped(RuntimeError("no running event loop")), True),
        (ExceptionGroup("tg", [ValueError("x"), RuntimeError("no running event loop")]), True),
        (ValueError("no running event loop"), False),  # not the type asyncio raises
        (RuntimeError("something else"), False),
        (ZeroDivisionError(), False),
    ],
)
def test_needs_asyncio(exc: BaseException, expected: bool) -> None:
    assert needs_asyncio(exc) is expected


def test_the_hint_is_logged_once_per_hints_object(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="trio_asgi.error")
    first, second = FirstRunHints(), FirstRunHints()
    for hints in (first, first, second):
        hints.note_failure(ValueError("unrelated"))
        hints.note_failure(RuntimeError("no running event loop"))
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.error"]
    assert len(lines) == 2
    assert "--loop asyncio" in lines[0]


def test_each_server_context_sets_its_own_hints_in_its_app_context() -> None:
    one, two = ServerContext(app=None), ServerContext(app=None)  # type: ignore[arg-type]
    assert one.app_context.run(server_hints.get) is one.hints
    assert two.app_context.run(server_hints.get) is two.hints
    assert one.hints is not two.hints
    assert server_hints.get() is None  # nothing global: the caller's context is untouched

    adopted = contextvars.copy_context()
    one.adopt_context(adopted)
    assert one.app_context is adopted
    assert adopted.run(server_hints.get) is one.hints


def test_loop_is_validated() -> None:
    with pytest.raises(ConfigError, match="loop must be 'trio' or 'asyncio', not 'uvloop'"):
        Config(loop="uvloop")  # type: ignore[arg-type]
    assert Config(loop="asyncio").loop == "asyncio"
