"""Tier 1: trio_asgi.run's checks before anything starts, and the KeyboardInterrupt unwrapping
that serve() uses. Serving, logging and signals in a subprocess: tests/integration/test_cli.py.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import trio_asgi
from trio_asgi import AppImportError, Config, ConfigError
from trio_asgi._standalone import sole_keyboard_interrupt

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


async def app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("run() must not get as far as serving")


def test_run_is_public() -> None:
    assert "run" in trio_asgi.__all__


def test_a_setting_config_rejects_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="port"):
        trio_asgi.run(app, port=-1)


def test_an_unknown_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="prot"):
        trio_asgi.run(app, prot=8000)


def test_config_and_settings_together_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="not both"):
        trio_asgi.run(app, Config(port=0), port=0)


def test_config_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Config"):
        trio_asgi.run(app, {"port": 0})  # type: ignore[arg-type]


def test_a_bad_log_level_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        trio_asgi.run(app, port=0, log_level="verbose")


def test_an_import_string_that_names_nothing() -> None:
    with pytest.raises(AppImportError, match="not_a_module_anywhere"):
        trio_asgi.run("not_a_module_anywhere:app", port=0)


def _nested(leaf: BaseException, depth: int) -> BaseException:
    for _ in range(depth):
        leaf = BaseExceptionGroup("nursery", [leaf])
    return leaf


@pytest.mark.parametrize("depth", [1, 3])
def test_a_keyboard_interrupt_alone_in_nested_groups_is_found(depth: int) -> None:
    interrupt = KeyboardInterrupt()
    group = _nested(interrupt, depth)
    assert isinstance(group, BaseExceptionGroup)
    assert sole_keyboard_interrupt(group) is interrupt


@pytest.mark.parametrize(
    "group",
    [
        BaseExceptionGroup("two", [KeyboardInterrupt(), KeyboardInterrupt()]),
        BaseExceptionGroup("mixed", [KeyboardInterrupt(), ValueError()]),
        BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [SystemExit()])]),
        ExceptionGroup("error", [ValueError()]),
    ],
)
def test_anything_else_is_left_as_it_is(group: BaseExceptionGroup[BaseException]) -> None:
    assert sole_keyboard_interrupt(group) is None
