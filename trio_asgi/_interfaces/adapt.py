"""adapt(): the app as the server calls it, an ASGI 3 callable, from ``Config.interface``.

``"auto"`` reads the interface from the app's signature (``detect.detect_interface``) and logs
one INFO line on ``trio_asgi.error`` with what it decided and why; a fixed interface wraps
without looking. With ``Config.loop == "asyncio"`` an ASGI 3 or ASGI 2 app is then wrapped in
an :class:`~trio_asgi._interfaces.asyncio_loop.AsyncioBridge`, so lifespan and connections
call the same Trio-side callable while the app runs as asyncio code (a WSGI app runs in
threads either way). Called once per :func:`~trio_asgi.serve`, before anything is bound.
"""

from __future__ import annotations

from typing import Any, cast

from .._config import Config
from .._logging import error_logger
from .._types import ASGIApp
from .asgi2 import ASGI2Adapter, ASGI2App
from .asyncio_loop import AsyncioBridge
from .detect import INTERFACE_NAMES, AppInterface, detect_interface
from .wsgi import WSGIAdapter

__all__ = ["adapt"]


def adapt(app: Any, config: Config) -> ASGIApp:
    """The ASGI 3 callable that serves ``app`` as ``config.interface`` says.

    Args:
        app: what the user gave :func:`~trio_asgi.serve`: an ASGI 3, ASGI 2 or WSGI app.
        config: its ``interface`` (``"auto"``, ``"asgi3"``, ``"asgi2"``, ``"wsgi"``),
            ``wsgi_threads`` and ``loop``.

    Returns:
        ASGIApp: ``app`` itself for ASGI 3, else an adapter (``ASGI2Adapter``,
        ``WSGIAdapter``); with ``loop="asyncio"``, an ASGI 3 or 2 app inside an
        ``AsyncioBridge`` (``serve()`` opens its loop with ``AsyncioBridge.open_loop``).

    Raises:
        AppImportError: with ``interface="auto"``, ``app`` fits no interface or several;
            the message says what was found and which ``--interface`` serves it anyway.
    """
    interface: AppInterface
    if config.interface == "auto":
        interface, reason = detect_interface(app)
        error_logger.info(
            "Serving the app as %s: %s; --interface forces another",
            INTERFACE_NAMES[interface],
            reason,
        )
    else:
        interface = config.interface
    if interface == "wsgi":
        return WSGIAdapter(app, threads=config.wsgi_threads)
    asgi3 = ASGI2Adapter(cast(ASGI2App, app)) if interface == "asgi2" else cast(ASGIApp, app)
    if config.loop == "asyncio":
        return AsyncioBridge(asgi3)
    return asgi3
