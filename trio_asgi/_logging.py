"""The two loggers, the access-log line, and the cached ``Date`` header value.

The library installs no handlers: only the CLI configures logging. Arguments are passed
lazily (``%s``), so a disabled logger costs one ``isEnabledFor`` check.

- ``trio_asgi.error``: server life (listening, shutdown), app errors with tracebacks.
- ``trio_asgi.access``: one INFO line per response:
  ``127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 1.3ms``.
"""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from typing import Final

from ._types import Address, ListenAddress, UnixAddress

__all__ = [
    "DateHeader",
    "access_logger",
    "display_url",
    "error_logger",
    "format_address",
    "log_access",
]

error_logger: Final = logging.getLogger("trio_asgi.error")
access_logger: Final = logging.getLogger("trio_asgi.access")


def format_address(address: tuple[str, int | None] | None) -> str:
    """``"host:port"`` (``"[::1]:8000"`` for IPv6), ``"unix:/run/app.sock"`` for a Unix
    socket's ``(path, None)`` (the ASGI ``server`` form, a ``UnixAddress``), or ``"-"`` when
    there is no address."""
    if address is None:
        return "-"
    host, port = address
    if port is None:
        return f"unix:{host}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def display_url(address: ListenAddress, scheme: str) -> str:
    """Where a listener is reached, in a form a user can paste: ``"http://127.0.0.1:8000"``,
    ``"https://[::1]:8443"`` for TCP (``scheme`` is ``"http"`` or ``"https"``),
    ``"unix:/run/app.sock"`` for a Unix socket (curl: ``--unix-socket /run/app.sock``),
    whatever the scheme."""
    if isinstance(address, UnixAddress):
        return format_address(address)
    return f"{scheme}://{format_address(address)}"


def log_access(
    client: Address | None,
    method: bytes,
    target: bytes,
    http_version: bytes,
    status: int,
    started_at: float,
) -> None:
    """Write one access-log line; ``started_at`` is the ``time.perf_counter()`` of the request."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    access_logger.info(
        '%s - "%s %s HTTP/%s" %d %.1fms',
        format_address(client),
        method.decode("ascii", "replace"),
        target.decode("ascii", "replace"),
        http_version.decode("ascii", "replace"),
        status,
        (time.perf_counter() - started_at) * 1000,
    )


class DateHeader:
    """The ``Date`` header value (RFC 9110 section 6.6.1), formatted at most once a second.

    One instance per server: ``value()`` returns e.g. ``b"Mon, 23 Nov 2026 20:14:20 GMT"``.
    """

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        """The current date as IMF-fixdate bytes, reformatted when the second changes."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value
