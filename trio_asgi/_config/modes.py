"""The modes ``Config`` fields choose among: each a ``Literal`` type and its values."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Final, Literal

from .._errors import ConfigError

__all__ = [
    "CHOICES",
    "EventLoop",
    "HTTPMode",
    "Interface",
    "LifespanMode",
    "WebSocketMode",
    "check_installed",
    "check_mode",
]

#: ``"auto"``: run lifespan, but serve without it if the app does not support it.
#: ``"on"``: run lifespan; an app that fails it is not served. ``"off"``: never run it.
LifespanMode = Literal["auto", "on", "off"]

#: ``"auto"``: httptools if it is installed (``pip install httptools``), else h11.
#: ``"h11"``: the pure-Python parser, the reference. ``"httptools"``: llhttp, in C, faster.
#: Both parse requests into the same events and responses are written the same way.
HTTPMode = Literal["auto", "h11", "httptools"]

#: ``"auto"``: upgrade valid WebSocket handshakes (RFC 6455) to the ASGI ``websocket`` scope.
#: ``"none"``: no WebSocket support; upgrade requests reach the app as plain ``http`` requests.
WebSocketMode = Literal["auto", "none"]

#: How the server calls the app. ``"asgi3"``: ``await app(scope, receive, send)`` (ASGI 3.0).
#: ``"asgi2"``: ``await app(scope)(receive, send)``, the ASGI 2 double callable.
#: ``"wsgi"``: ``app(environ, start_response)`` (PEP 3333), in a worker thread.
#: ``"auto"``: decided from the callable's signature when the server starts, and logged.
Interface = Literal["auto", "asgi3", "asgi2", "wsgi"]

#: Where the app runs: ``"trio"``, as Trio code; ``"asyncio"``, as asyncio code on a loop
#: that trio-asyncio hosts in Trio (``pip install '.[asyncio]'``). The server stays Trio.
EventLoop = Literal["trio", "asyncio"]

#: Each mode field's values, in the order error messages list them.
CHOICES: Final = {
    "lifespan": ("auto", "on", "off"),
    "http": ("auto", "h11", "httptools"),
    "ws": ("auto", "none"),
    "interface": ("auto", "asgi3", "asgi2", "wsgi"),
    "loop": ("trio", "asyncio"),
}


def check_mode(name: str, value: object) -> None:
    """Raise :class:`~trio_asgi.ConfigError` unless ``value`` is one of the field ``name``'s
    ``CHOICES``: ``"ws must be 'auto' or 'none', not 'yes'"``."""
    choices = CHOICES[name]
    if value not in choices:
        quoted = [repr(choice) for choice in choices]
        listed = " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)
        raise ConfigError(f"{name} must be {listed}, not {value!r}")


def check_installed(http: str, loop: str) -> None:
    """Raise :class:`~trio_asgi.ConfigError`, with the install command, when ``http`` or
    ``loop`` names a package that is not installed (looked up, not imported: importing
    trio-asyncio patches asyncio)."""
    if http == "httptools" and find_spec("httptools") is None:
        raise ConfigError(
            "http='httptools' needs the httptools package: "
            "pip install httptools (or use http='h11')"
        )
    if loop == "asyncio" and find_spec("trio_asyncio") is None:
        raise ConfigError(
            "loop='asyncio' needs trio-asyncio: pip install '.[asyncio]' in a checkout of "
            "trio-asgi, else pip install trio-asyncio (or use loop='trio')"
        )
