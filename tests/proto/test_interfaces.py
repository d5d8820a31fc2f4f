"""Tier 1: which interface ``detect_interface`` reads from an app, and what ``adapt`` does.

One table: each app shape with its expected interface and reason, or the error it is refused
with (the flag that forces it included). No event loop except for the ASGI 2 adapter's scope,
which is awaited with fakes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware

from trio_asgi import AppImportError, Config
from trio_asgi._interfaces.adapt import adapt
from trio_asgi._interfaces.asgi2 import ASGI2Adapter
from trio_asgi._interfaces.detect import detect_interface
from trio_asgi._interfaces.wsgi import WSGIAdapter


async def asgi3_function(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGI3Object:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass

    async def method(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class StarletteLike:
    """Starlette and FastAPI: ``async def __call__(self, scope, receive, send)``, inherited."""

    def __init__(self, debug: bool = False) -> None:
        self.debug = debug

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class FastAPILike(StarletteLike):
    pass


class ASGI3AwaitableClass:
    """ASGI 3 as a class: constructed with the three arguments, then awaited."""

    def __init__(self, scope: Any, receive: Any, send: Any) -> None:
        pass

    def __await__(self) -> Any:
        yield from ()


class ASGI2Class:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


def asgi2_function(scope: Any) -> Callable[[Any, Any], Awaitable[None]]:
    async def instance(receive: Any, send: Any) -> None:
        pass

    return instance


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WSGIObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class FlaskLike:
    """Flask's and Django's WSGIHandler's shape: a sync ``__call__(self, environ,
    start_response)`` (Flask's delegates to ``wsgi_app``)."""

    def wsgi_app(self, environ: Any, start_response: Any) -> list[bytes]:
        return []

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return self.wsgi_app(environ, start_response)


class WSGIClass:
    """PEP 3333's class style: constructed with environ, start_response, then iterated."""

    def __init__(self, environ: Any, start_response: Any) -> None:
        pass

    def __iter__(self) -> Any:
        return iter([])


async def with_keyword_default(scope: Any, receive: Any, send: Any, *, debug: bool = False) -> None:
    pass


async def handler_with_settings(settings: Any, scope: Any, receive: Any, send: Any) -> None:
    pass


wrapper_of_async = functools.wraps(asgi3_function)(
    lambda *args: asgi3_function(*args)  # a decorator's sync wrapper
)


def sync_three(scope: Any, receive: Any, send: Any) -> None:
    pass


def sync_with_default(environ: Any, start_response: Any = None) -> None:
    pass


def sync_varargs(*args: Any) -> None:
    pass


async def async_two(receive: Any, send: Any) -> None:
    pass


def required_keyword(scope: Any, *, receive: Any) -> None:
    pass


ACCEPTED: list[tuple[str, object, str, str]] = [
    (
        "async function with an optional keyword-only parameter",
        with_keyword_default,
        "asgi3",
        "an async function that takes scope, receive, send",
    ),
    (
        "async function",
        asgi3_function,
        "asgi3",
        "an async function that takes scope, receive, send",
    ),
    (
        "async callable object",
        ASGI3Object(),
        "asgi3",
        "an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "Starlette-like instance",
        StarletteLike(),
        "asgi3",
        "an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "Starlette",
        Starlette(),
        "asgi3",
        "an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "Starlette middleware around an app",
        GZipMiddleware(Starlette()),
        "asgi3",
        "an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "FastAPI-like (inherited __call__)",
        FastAPILike(),
        "asgi3",
        "an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "bound method",
        ASGI3Object().method,
        "asgi3",
        "an async bound method that takes scope, receive, send",
    ),
    (
        "ASGI 3 awaitable class",
        ASGI3AwaitableClass,
        "asgi3",
        "a class taking scope, receive, send whose instances are awaited",
    ),
    (
        "functools.wraps wrapper of async",
        wrapper_of_async,
        "asgi3",
        "an async function that takes scope, receive, send",
    ),
    (
        "ASGI 2 class",
        ASGI2Class,
        "asgi2",
        "a class whose instances take scope, then receive and send",
    ),
    (
        "ASGI 2 function",
        asgi2_function,
        "asgi2",
        "a function that takes scope (and returns the app for it)",
    ),
    ("WSGI function", wsgi_function, "wsgi", "a function that takes environ, start_response"),
    ("WSGI object", WSGIObject(), "wsgi", "a callable object that takes environ, start_response"),
    ("Flask-like", FlaskLike(), "wsgi", "a callable object that takes environ, start_response"),
    (
        "WSGI class",
        WSGIClass,
        "wsgi",
        "a class whose instances take environ, start_response, iterated",
    ),
    (
        "partial of async function",
        functools.partial(asgi3_function),
        "asgi3",
        "a functools.partial of an async function that takes scope, receive, send",
    ),
    (
        "partial of async callable object",
        functools.partial(ASGI3Object()),
        "asgi3",
        "a functools.partial of an object with an async __call__ that takes scope, receive, send",
    ),
    (
        "partial binding a first argument",
        functools.partial(handler_with_settings, {"debug": True}),
        "asgi3",
        "a functools.partial of an async function that takes scope, receive, send",
    ),
    (
        "partial of ASGI 2 class",
        functools.partial(ASGI2Class),
        "asgi2",
        "a functools.partial of a class whose instances take scope, then receive and send",
    ),
    (
        "partial of ASGI 2 function",
        functools.partial(asgi2_function),
        "asgi2",
        "a functools.partial of a function that takes scope (and returns the app for it)",
    ),
    (
        "partial of WSGI function",
        functools.partial(wsgi_function),
        "wsgi",
        "a functools.partial of a function that takes environ, start_response",
    ),
    (
        "partial of Flask-like",
        functools.partial(FlaskLike()),
        "wsgi",
        "a functools.partial of a callable object that takes environ, start_response",
    ),
]


@pytest.mark.parametrize(
    ("app", "interface", "reason"),
    [pytest.param(app, interface, reason, id=name) for name, app, interface, reason in ACCEPTED],
)
def test_detects_the_interface_and_says_why(app: object, interface: str, reason: str) -> None:
    detected = detect_interface(app)
    assert detected.interface == interface
    assert detected.reason == reason


class ASGI3ClassNotInstantiated:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class ASGI2ClassWithSyncCall:
    def __init__(self, scope: Any) -> None:
        pass

    def __call__(self, receive: Any, send: Any) -> None:
        pass


class NothingCallable:
    def __init__(self, scope: Any) -> None:
        pass


REFUSED: list[tuple[str, object, list[str]]] = [
    (
        "lambda of wrong arity",
        lambda: None,
        ["is a lambda that takes 0 positional arguments", "fits no interface", "--interface"],
    ),
    (
        "lambda of four arguments",
        lambda a, b, c, d: None,
        ["is a lambda that takes (a, b, c, d): it fits no interface"],
    ),
    ("an int", 42, ["the app 42 is not callable", "async def app(scope, receive, send)"]),
    (
        "sync function of 3 params",
        sync_three,
        [
            "test_interfaces.sync_three is a function that takes scope, receive, send",
            "ASGI 3 if it returns an awaitable",
            "--interface asgi3 serves it",
        ],
    ),
    (
        "sync function taking 2 or 1",
        sync_with_default,
        ["takes 1 to 2 positional arguments", "--interface asgi2 or --interface wsgi chooses"],
    ),
    (
        "sync *args",
        sync_varargs,
        [
            "takes 0 to 3 positional arguments",
            "--interface asgi2 or --interface wsgi or --interface asgi3 chooses",
        ],
    ),
    (
        "async function of 2 params",
        async_two,
        ["an async function that takes 2 positional arguments", "--interface asgi3"],
    ),
    (
        "required keyword-only parameter",
        required_keyword,
        ["takes (scope: 'Any', *, receive: 'Any') -> 'None': it fits no interface"],
    ),
    (
        "class whose instances are ASGI 3 apps",
        ASGI3ClassNotInstantiated,
        ["a class whose instances are ASGI 3 apps: serve an instance"],
    ),
    (
        "ASGI 2 class with a sync __call__",
        ASGI2ClassWithSyncCall,
        ["a class whose constructor takes 1 positional argument", "--interface asgi3, asgi2"],
    ),
    ("class with no __call__", NothingCallable, ["neither awaited", "--interface"]),
    (
        "a builtin function",
        print,
        ["the app builtins.print is a builtin function that takes 0 to 3 positional arguments"],
    ),
    ("a builtin type", int, ["signature that cannot be read", "--interface asgi3, asgi2 or wsgi"]),
]


@pytest.mark.parametrize(
    ("app", "fragments"),
    [pytest.param(app, fragments, id=name) for name, app, fragments in REFUSED],
)
def test_refuses_what_fits_no_interface_or_several(app: object, fragments: list[str]) -> None:
    with pytest.raises(AppImportError) as raised:
        detect_interface(app)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# -- adapt: Config.interface to the callable the server calls ---------------------------------


def test_auto_wraps_an_asgi2_app_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    adapted = adapt(ASGI2Class, Config())
    assert isinstance(adapted, ASGI2Adapter)
    assert adapted.app is ASGI2Class
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "trio_asgi.error",
            logging.INFO,
            "Serving the app as ASGI 2: a class whose instances take scope, then receive and "
            "send; --interface forces another",
        )
    ]


def test_auto_serves_an_asgi3_app_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    assert adapt(asgi3_function, Config()) is asgi3_function
    assert [r.getMessage() for r in caplog.records] == [
        "Serving the app as ASGI 3: an async function that takes scope, receive, send; "
        "--interface forces another"
    ]


def test_auto_wraps_a_wsgi_app_with_the_configured_threads() -> None:
    adapted = adapt(wsgi_function, Config(wsgi_threads=3))
    assert isinstance(adapted, WSGIAdapter)
    assert adapted.app is wsgi_function
    assert adapted.limiter.total_tokens == 3


def test_auto_refuses_an_unfit_app() -> None:
    with pytest.raises(AppImportError, match="is not callable"):
        adapt(42, Config())


@pytest.mark.parametrize(
    ("interface", "wrapper"),
    [("asgi3", None), ("asgi2", ASGI2Adapter), ("wsgi", WSGIAdapter)],
)
def test_a_fixed_interface_wraps_without_detecting_or_logging(
    caplog: pytest.LogCaptureFixture, interface: Any, wrapper: type | None
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    app = sync_three  # fits no interface by its signature: only a fixed one serves it
    adapted: object = adapt(app, Config(interface=interface))
    if wrapper is None:
        assert adapted is app
    else:
        assert isinstance(adapted, wrapper)
    assert caplog.records == []


# -- ASGI2Adapter --------------------------------------------------------------------------


async def test_asgi2_adapter_calls_then_awaits_with_version_2_in_a_copied_scope() -> None:
    calls: list[tuple[str, Any]] = []

    class App:
        def __init__(self, scope: Any) -> None:
            calls.append(("init", scope))

        async def __call__(self, receive: Any, send: Any) -> None:
            calls.append(("call", (receive, send)))

    async def receive() -> dict[str, Any]:
        raise AssertionError("not called")

    async def send(message: Any) -> None:
        raise AssertionError("not called")

    state: dict[str, Any] = {}
    asgi = {"version": "3.0", "spec_version": "2.5"}
    scope = {"type": "http", "asgi": asgi, "state": state}
    await ASGI2Adapter(App)(scope, receive, send)
    assert calls[0][0] == "init"
    seen = calls[0][1]
    assert seen["asgi"] == {"version": "2.0", "spec_version": "2.5"}
    assert seen["state"] is state  # what lifespan startup put there reaches the app
    assert scope == {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.5"}, "state": {}}
    assert asgi == {"version": "3.0", "spec_version": "2.5"}
    assert calls[1] == ("call", (receive, send))
    assert repr(ASGI2Adapter(App)).startswith("ASGI2Adapter(<class ")
