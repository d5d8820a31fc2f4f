"""Turn an import string such as ``"package.module:app"`` into an ASGI app.

Rules of this module:

* It only imports and looks up; it never touches ``sys.path`` (the CLI's ``--app-dir`` does
  that), never prints and never exits. Every failure it can name is an
  :class:`~trio_asgi.AppImportError` whose message is one line that says what to fix.
* An error raised *inside* the user's module while it is being imported (a ``SyntaxError``, an
  ``ImportError`` for some other module, any exception) propagates unchanged, so its traceback
  points at the user's own bug instead of at us.
* Anything callable is accepted; ``serve()`` decides how to call it (ASGI 3, ASGI 2 or WSGI:
  ``_interfaces.adapt``, from ``Config.interface``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import cast

from ._errors import AppImportError
from ._types import ASGIApp

__all__ = ["import_app"]

_FORMAT_HINT = '"<module>:<attribute>", e.g. "myproject.main:app"'


def import_app(import_string: str, *, factory: bool = False) -> ASGIApp:
    """Import the module named in ``import_string`` and return the app it names.

    Args:
        import_string (str): ``"<module>:<attribute>"``. The module part is a dotted module
            name as for :func:`importlib.import_module` (``"myproject.main"``); the
            attribute part may be dotted too (``"main:server.app"`` is
            ``main.server.app``).
        factory (bool): If true, the attribute is a factory: it is called with no arguments
            and what it returns is the app (as uvicorn's ``--factory``).

    Returns:
        ASGIApp: the app, an ASGI 3 callable.

    Raises:
        AppImportError: ``import_string`` is malformed; the module it names (or a parent
            package of it) does not exist; the module has no such attribute; the object is
            not callable; with ``factory=True``, calling the factory raised or returned
            something that is not callable. The message is one line.
        Exception: whatever importing the module raised, unchanged, when the error is inside
            the module: a ``SyntaxError``, an ``ImportError`` for a module it imports, an
            exception raised at import time.

    Examples:
        >>> import_app("myproject.main:app")  # myproject/main.py defines app
        <function app at 0x...>
        >>> import_app("myproject.main:create_app", factory=True)  # returns the app
        <starlette.applications.Starlette object at 0x...>
        >>> import_app("myproject.main:ap")
        Traceback (most recent call last):
          ...
        trio_asgi._errors.AppImportError: module 'myproject.main' has no attribute 'ap'
    """
    module_name, attribute = _split(import_string)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_same_or_parent(exc.name, module_name):
            raise  # the user's module imports something that is missing: their bug, as is
        missing = "" if exc.name == module_name else f" (no module named {exc.name!r})"
        raise AppImportError(f"could not import module {module_name!r}{missing}") from exc

    obj: object = module
    names = attribute.split(".")
    for depth, name in enumerate(names):
        try:
            obj = getattr(obj, name)
        except AttributeError as exc:
            owner = f"module {module_name!r}"
            if depth:
                owner = repr(f"{module_name}:{'.'.join(names[:depth])}")
            raise AppImportError(f"{owner} has no attribute {name!r}") from exc

    if not factory:
        if not callable(obj):
            raise AppImportError(
                f"{import_string!r} is not callable (type {type(obj).__name__}); an ASGI 3 app "
                "is async def app(scope, receive, send)"
            )
        return cast(ASGIApp, obj)

    if not callable(obj):
        raise AppImportError(
            f"factory {import_string!r} is not callable (type {type(obj).__name__})"
        )
    try:
        app = obj()
    except Exception as exc:
        raise AppImportError(f"calling factory {import_string!r} failed: {_describe(exc)}") from exc
    if inspect.iscoroutine(app):
        app.close()  # never awaited on purpose; closing it avoids a RuntimeWarning
        raise AppImportError(
            f"factory {import_string!r} is an async function; it must be a plain function "
            "that returns the app"
        )
    if not callable(app):
        raise AppImportError(
            f"factory {import_string!r} returned a non-callable (type {type(app).__name__})"
        )
    return cast(ASGIApp, app)


def _split(import_string: str) -> tuple[str, str]:
    """Split ``"mod.sub:obj.app"`` into ``("mod.sub", "obj.app")``, checking every name."""
    module_name, colon, attribute = import_string.partition(":")
    if not (colon and _is_dotted_name(module_name) and _is_dotted_name(attribute)):
        raise AppImportError(f"import string must be {_FORMAT_HINT}, not {import_string!r}")
    return module_name, attribute


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _is_same_or_parent(name: str, module_name: str) -> bool:
    """Is ``name`` the module ``module_name`` itself or one of its parent packages?"""
    return module_name == name or module_name.startswith(name + ".")


def _describe(exc: Exception) -> str:
    """``"RuntimeError: no database"`` on one line (the first line of the message)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
