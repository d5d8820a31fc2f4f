"""Which interface an app speaks, read from its signature: ASGI 3, ASGI 2 or WSGI.

Sans-IO: it only inspects the object (``inspect.signature``, ``inspect.iscoroutinefunction``);
it never calls the app, imports no trio, and is tested without an event loop.

The rules, first match wins (ASGI spec, "Legacy Applications"; PEP 3333, "The Application/
Framework Side"). "Takes n" means the callable accepts n positional arguments (counted after
``functools.partial`` and bound ``self`` are taken off, so partials, bound methods and callable
instances are read as they will be called):

=====================================================  ==========  ============================
what the app is                                        interface   example
=====================================================  ==========  ============================
async callable taking 3 (a function, a bound method,   ASGI 3      ``async def app(scope,
an object whose ``__call__`` is async)                             receive, send)``, Starlette
a class taking 3 whose instances are awaitable         ASGI 3      ``__init__(self, scope,
                                                                   receive, send)`` + ``__await__``
a class taking 1 whose instances' ``__call__`` is      ASGI 2      ``__init__(self, scope)`` +
async and takes 2                                                  ``async __call__(receive, send)``
a class taking 2 whose instances are iterable          WSGI        PEP 3333's class style
sync callable taking 1                                 ASGI 2      ``def app(scope): return fn``
sync callable taking 2                                 WSGI        ``def app(environ,
                                                                   start_response)``, Flask, Django
=====================================================  ==========  ============================

A sync callable that wraps an async one with :func:`functools.wraps` (``__wrapped__``) counts
as async. Everything else is refused with :class:`~trio_asgi.AppImportError`, whose one-line
message says what was found and which ``--interface`` flag serves the app anyway: a sync
callable taking 3 (it may return an awaitable, or not), one that takes several of 1, 2 and 3
(``*args``, defaults), a class whose instances are ASGI 3 apps (pass an instance), an object
whose signature cannot be read, or a non-callable. Nothing is guessed: when the signature does
not say, the user says (``Config(interface=...)``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Final, Literal, NamedTuple

from .._errors import AppImportError

__all__ = ["INTERFACE_NAMES", "AppInterface", "Detected", "detect_interface"]

#: An interface an app can be served with (``Config.interface`` without ``"auto"``).
AppInterface = Literal["asgi3", "asgi2", "wsgi"]

#: How each interface is named in messages.
INTERFACE_NAMES: Final[dict[AppInterface, str]] = {
    "asgi3": "ASGI 3",
    "asgi2": "ASGI 2",
    "wsgi": "WSGI",
}

_SHAPES: Final = (
    "ASGI 3 is `async def app(scope, receive, send)`, ASGI 2 a class or function taking "
    "`scope`, WSGI `def app(environ, start_response)`"
)


class Detected(NamedTuple):
    """What :func:`detect_interface` decided.

    Attributes:
        interface (str): ``"asgi3"``, ``"asgi2"`` or ``"wsgi"``.
        reason (str): why, one lowercase phrase for a log line, e.g.
            ``"a class whose instances take scope, then receive and send"``.
    """

    interface: AppInterface
    reason: str


def detect_interface(app: object) -> Detected:
    """Tell from ``app``'s signature whether it is an ASGI 3, ASGI 2 or WSGI app.

    Args:
        app: the object to serve. It is inspected, never called.

    Returns:
        Detected: the interface and the reason, by the rules in the module docstring.

    Raises:
        AppImportError: ``app`` fits no interface, or fits several, or its signature cannot
            be read. The message is one line: what was found, and the ``--interface`` flag
            (``Config.interface``) that serves it anyway.
    """
    if not callable(app):
        raise AppImportError(f"the app {_describe(app)} is not callable; {_SHAPES}")
    target = _unwrap_partial(app)
    partial = "a functools.partial of " if isinstance(app, functools.partial) else ""
    if inspect.isclass(target):
        interface, reason = _detect_class(target, app)
        return Detected(interface, partial + reason)
    is_async = _is_async(target)
    kind = partial + _kind(target, is_async=is_async)
    fits = _positional_fits(app)
    if is_async:
        if 3 in fits:
            return Detected("asgi3", f"{kind} that takes scope, receive, send")
        raise AppImportError(
            f"the app {_describe(app)} is {kind} that takes {_count(fits, app)}: an ASGI 3 app "
            "takes scope, receive, send; --interface asgi3 serves it anyway"
        )
    candidates = [name for n, name in ((1, "asgi2"), (2, "wsgi"), (3, "asgi3")) if n in fits]
    if candidates == ["asgi2"]:
        return Detected("asgi2", f"{kind} that takes scope (and returns the app for it)")
    if candidates == ["wsgi"]:
        return Detected("wsgi", f"{kind} that takes environ, start_response")
    if candidates == ["asgi3"]:
        raise AppImportError(
            f"the app {_describe(app)} is {kind} that takes scope, receive, send: "
            "ASGI 3 if it returns an awaitable; --interface asgi3 serves it as that"
        )
    if candidates:
        flags = " or ".join(f"--interface {name}" for name in candidates)
        raise AppImportError(
            f"the app {_describe(app)} is {kind} that takes {_count(fits, app)}, which "
            f"fits more than one interface; {flags} chooses"
        )
    raise AppImportError(
        f"the app {_describe(app)} is {kind} that takes {_count(fits, app)}: it fits no "
        f"interface ({_SHAPES}); --interface asgi3, asgi2 or wsgi serves it as that"
    )


def _detect_class(cls: type, app: object) -> Detected:
    """The rules for a class: what its constructor takes (called as ``app``: the class, or a
    partial of it), and what its instances do."""
    fits = _positional_fits(app)
    call = _instance_call(cls)
    async_call = call is not None and _is_async(call)
    call_fits = _positional_fits(call, drop_self=True) if async_call else set()
    if 3 in fits and hasattr(cls, "__await__"):
        return Detected("asgi3", "a class taking scope, receive, send whose instances are awaited")
    if 1 in fits and 2 in call_fits:
        return Detected("asgi2", "a class whose instances take scope, then receive and send")
    if fits == {2} and hasattr(cls, "__iter__"):
        return Detected("wsgi", "a class whose instances take environ, start_response, iterated")
    if 0 in fits and 3 in call_fits:
        raise AppImportError(
            f"the app {_describe(app)} is a class whose instances are ASGI 3 apps: serve an "
            f"instance, {cls.__qualname__}()"
        )
    raise AppImportError(
        f"the app {_describe(app)} is a class whose constructor takes {_count(fits, app)} and "
        "whose instances are neither awaited with receive, send (ASGI 2) nor awaitable (ASGI 3) "
        "nor iterable (WSGI); --interface asgi3, asgi2 or wsgi serves it as that"
    )


def _instance_call(cls: type) -> object:
    """The ``__call__`` a class gives its instances (not the metaclass's), or None."""
    for klass in cls.__mro__:
        if "__call__" in vars(klass):
            call: object = vars(klass)["__call__"]
            return call
    return None


def _unwrap_partial(app: object) -> object:
    while isinstance(app, functools.partial):
        app = app.func
    return app


def _is_async(target: object) -> bool:
    """Whether calling ``target`` returns a coroutine, as its code says: a coroutine function,
    a bound method of one, an object whose ``__call__`` is one, or a ``functools.wraps``
    wrapper of one."""
    target = _unwrap_partial(target)
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        call = _instance_call(type(target))
        if call is None or inspect.isbuiltin(target):
            return False
        target = call
    if inspect.iscoroutinefunction(target):
        return True
    return callable(target) and inspect.iscoroutinefunction(inspect.unwrap(target))


def _positional_fits(target: object, *, drop_self: bool = False) -> set[int]:
    """The numbers of positional arguments, of 0 to 3, that ``target`` can be called with.

    ``drop_self``: ``target`` is a plain function taken from a class (an instance's
    ``__call__``); its first parameter is the instance.

    Raises:
        AppImportError: the signature cannot be read (some builtins and C extensions).
    """
    try:
        signature = inspect.signature(target)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise AppImportError(
            f"the app {_describe(target)} has a signature that cannot be read ({exc}); "
            "--interface asgi3, asgi2 or wsgi says how to call it"
        ) from exc
    required = most = 0
    unlimited = False
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            required += parameter.default is parameter.empty
        elif parameter.kind is parameter.VAR_POSITIONAL:
            unlimited = True
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return set()  # a required keyword-only argument: no positional call fits
    if drop_self:
        required, most = max(required - 1, 0), max(most - 1, 0)
    return {n for n in range(4) if required <= n and (unlimited or n <= most)}


def _kind(target: object, *, is_async: bool) -> str:
    """What ``target`` is, as a noun phrase: ``"an async function"``, ``"a callable object"``."""
    if inspect.ismethod(target):
        return "an async bound method" if is_async else "a bound method"
    if inspect.isbuiltin(target):
        return "a builtin function"
    if inspect.isfunction(target):
        if target.__name__ == "<lambda>":
            return "a lambda"
        return "an async function" if is_async else "a function"
    return "an object with an async __call__" if is_async else "a callable object"


def _count(fits: set[int], app: object) -> str:
    """``"2 positional arguments"``, ``"1 to 3 positional arguments"``, or when none of 0 to
    3 fits, the signature itself: ``"(a, b, c, d)"``."""
    if not fits:
        return str(inspect.signature(app))  # type: ignore[arg-type]  # it was read before
    low, high = min(fits), max(fits)
    numbers = str(low) if low == high else f"{low} to {high}"
    return f"{numbers} positional argument{'' if numbers == '1' else 's'}"


def _describe(app: object) -> str:
    """The app as the user named it: ``main.App`` for a class or function, else its repr."""
    qualname = getattr(app, "__qualname__", None)
    module = getattr(app, "__module__", None)
    if (
        isinstance(qualname, str)
        and isinstance(module, str)
        and not isinstance(app, functools.partial)
    ):
        return f"{module}.{qualname}"
    text = repr(app)
    return text if len(text) <= 80 else text[:77] + "..."
