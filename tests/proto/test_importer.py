"""Tests for trio_asgi._importer.import_app: every error case and the happy paths.

Each test writes throwaway modules with unique names under tmp_path, so nothing is shared
through sys.modules between tests.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from trio_asgi import AppImportError
from trio_asgi._importer import import_app


class MakeModule(Protocol):
    def __call__(self, source: str, name: str = ..., *, package: bool = ...) -> str: ...


APP_SOURCE = """
async def app(scope, receive, send):
    pass

class Holder:
    async def app(self, scope, receive, send):
        pass

holder = Holder()

class CallableApp:
    async def __call__(self, scope, receive, send):
        pass

instance = CallableApp()
not_callable = 42

def make_app():
    return app

async def make_app_async():
    return app

def make_nothing():
    return "not an app"

def make_broken():
    raise RuntimeError("no database\\nsecond line")

def make_needs_args(settings):
    return app
"""


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeModule:
    """Write ``source`` as a module with a unique name on sys.path and return that name.

    ``name`` may be dotted ("pkg.sub"): missing packages are made with an empty
    ``__init__.py``. With ``package=True`` the module itself is a package.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    prefix = f"importer_{uuid.uuid4().hex}"

    def make(source: str, name: str = "mod", *, package: bool = False) -> str:
        full_name = f"{prefix}_{name}"
        path = tmp_path.joinpath(*full_name.split("."))
        for parent in reversed(path.relative_to(tmp_path).parents[:-1]):
            (tmp_path / parent).mkdir(exist_ok=True)
            (tmp_path / parent / "__init__.py").touch()
        if package:
            path.mkdir()
            path = path / "__init__"
        path.with_suffix(".py").write_text(textwrap.dedent(source))
        return full_name

    return make


def test_returns_the_named_callable(make_module: MakeModule) -> None:
    name = make_module(APP_SOURCE)
    assert import_app(f"{name}:app") is sys.modules[name].app


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("holder.app", lambda module: module.holder.app),
        ("instance", lambda module: module.instance),
        ("CallableApp", lambda module: module.CallableApp),
    ],
    ids=["dotted-attribute", "callable-instance", "class"],
)
def test_accepts_any_callable_and_dotted_attributes(
    make_module: MakeModule, attribute: str, expected: Callable[[object], object]
) -> None:
    name = make_module(APP_SOURCE)
    assert import_app(f"{name}:{attribute}") == expected(sys.modules[name])


def test_imports_a_submodule_of_a_package(make_module: MakeModule) -> None:
    name = make_module(APP_SOURCE, "pkg.sub")
    assert import_app(f"{name}:app") is sys.modules[name].app


def test_factory_returns_what_the_factory_returns(make_module: MakeModule) -> None:
    name = make_module(APP_SOURCE)
    assert import_app(f"{name}:make_app", factory=True) is sys.modules[name].app


@pytest.mark.parametrize(
    "import_string",
    ["", "app", "mod.app", ":app", "mod:", "mod:app:x", "mod:.app", "mod:app.", "mod.:app",
     ".mod:app", "mod:app()", "my mod:app", "mod:my app", "mod-x:app", "1mod:app"],
)  # fmt: skip
def test_malformed_import_string(import_string: str) -> None:
    with pytest.raises(AppImportError) as info:
        import_app(import_string)
    assert str(info.value) == (
        'import string must be "<module>:<attribute>", e.g. "myproject.main:app", '
        f"not {import_string!r}"
    )


def test_module_not_found() -> None:
    name = f"importer_missing_{uuid.uuid4().hex}"
    with pytest.raises(AppImportError) as info:
        import_app(f"{name}:app")
    assert str(info.value) == f"could not import module {name!r}"
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_parent_package_not_found() -> None:
    name = f"importer_missing_{uuid.uuid4().hex}"
    with pytest.raises(AppImportError) as info:
        import_app(f"{name}.sub.app:app")
    assert str(info.value) == (
        f"could not import module '{name}.sub.app' (no module named {name!r})"
    )


def test_submodule_not_found_in_existing_package(make_module: MakeModule) -> None:
    package = make_module("", "pkg", package=True)
    with pytest.raises(AppImportError) as info:
        import_app(f"{package}.missing:app")
    assert str(info.value) == f"could not import module '{package}.missing'"


def test_submodule_of_a_plain_module(make_module: MakeModule) -> None:
    name = make_module(APP_SOURCE)
    with pytest.raises(AppImportError) as info:
        import_app(f"{name}.sub:app")
    assert str(info.value) == f"could not import module '{name}.sub'"


@pytest.mark.parametrize(
    ("source", "error", "check"),
    [
        (
            "import importer_dependency_not_installed\n",
            ModuleNotFoundError,
            lambda exc: exc.name == "importer_dependency_not_installed",
        ),
        (
            "from json import no_such_name\n",
            ImportError,
            lambda exc: exc.name == "json",
        ),
        ("def broken(:\n", SyntaxError, lambda exc: exc.lineno == 1),
        (
            "raise RuntimeError('config file missing')\n",
            RuntimeError,
            lambda exc: str(exc) == "config file missing",
        ),
    ],
    ids=["missing-dependency", "bad-from-import", "syntax-error", "raises-at-import"],
)
def test_errors_inside_the_module_propagate_unchanged(
    make_module: MakeModule,
    source: str,
    error: type[Exception],
    check: Callable[[Exception], bool],
) -> None:
    name = make_module(source)
    with pytest.raises(error) as info:
        import_app(f"{name}:app")
    assert type(info.value) is error
    assert check(info.value)


def test_missing_sibling_imported_by_a_package_propagates(make_module: MakeModule) -> None:
    """``pkg/sub.py`` imports ``pkg.other``, which does not exist: the user's bug, as is."""
    package = make_module("", "pkg", package=True)
    sub = make_module(f"import {package}.other\n", "pkg.sub")
    with pytest.raises(ModuleNotFoundError) as info:
        import_app(f"{sub}:app")
    assert info.value.name == f"{package}.other"


@pytest.mark.parametrize(
    ("attribute", "factory", "expected"),
    [
        ("nope", False, "module {name!r} has no attribute 'nope'"),
        ("holder.nope", False, "'{name}:holder' has no attribute 'nope'"),
        ("holder.app.nope", False, "'{name}:holder.app' has no attribute 'nope'"),
        ("nope", True, "module {name!r} has no attribute 'nope'"),
        (
            "not_callable",
            False,
            "'{name}:not_callable' is not callable (type int); "
            "an ASGI 3 app is async def app(scope, receive, send)",
        ),
        ("not_callable", True, "factory '{name}:not_callable' is not callable (type int)"),
        (
            "make_broken",
            True,
            "calling factory '{name}:make_broken' failed: RuntimeError: no database",
        ),
        (
            "make_needs_args",
            True,
            "calling factory '{name}:make_needs_args' failed: TypeError: "
            "make_needs_args() missing 1 required positional argument: 'settings'",
        ),
        (
            "make_nothing",
            True,
            "factory '{name}:make_nothing' returned a non-callable (type str)",
        ),
        (
            "make_app_async",
            True,
            "factory '{name}:make_app_async' is an async function; "
            "it must be a plain function that returns the app",
        ),
    ],
)
def test_attribute_errors(
    make_module: MakeModule, attribute: str, factory: bool, expected: str
) -> None:
    name = make_module(APP_SOURCE)
    with pytest.raises(AppImportError) as info:
        import_app(f"{name}:{attribute}", factory=factory)
    assert str(info.value) == expected.format(name=name)
    assert "\n" not in str(info.value)


def test_does_not_touch_sys_path(make_module: MakeModule) -> None:
    name = make_module(APP_SOURCE)
    before = list(sys.path)
    import_app(f"{name}:app")
    with pytest.raises(AppImportError):
        import_app(f"{name}:nope")
    assert sys.path == before
