"""The server's settings: one frozen, keyword-only dataclass, validated on construction.

Conventions: every ``*_timeout`` field is a number of seconds (``math.inf`` means "no limit"
where the field says so), every ``*_size`` field is a number of bytes. A bad value raises
:class:`~trio_asgi.ConfigError` naming the field, the value and what it should be, so the CLI
can print it as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from ._errors import ConfigError

__all__ = ["Config", "HTTPMode", "LifespanMode", "WebSocketMode"]

#: ``"auto"``: run lifespan, but serve without it if the app does not support it.
#: ``"on"``: run lifespan; an app that fails it is not served. ``"off"``: never run it.
LifespanMode = Literal["auto", "on", "off"]
_LIFESPAN_MODES: Final = ("auto", "on", "off")

#: ``"auto"``: httptools if it is installed (``pip install 'trio-asgi[fast]'``), else h11.
#: ``"h11"``: the pure-Python parser, the reference. ``"httptools"``: llhttp, in C, faster.
#: Both parse requests into the same events and responses are written the same way.
HTTPMode = Literal["auto", "h11", "httptools"]
_HTTP_MODES: Final = ("auto", "h11", "httptools")

#: ``"auto"``: upgrade valid WebSocket handshakes (RFC 6455) to the ASGI ``websocket`` scope.
#: ``"none"``: no WebSocket support; upgrade requests reach the app as plain ``http`` requests.
WebSocketMode = Literal["auto", "none"]
_WS_MODES: Final = ("auto", "none")


@dataclass(frozen=True, kw_only=True)
class Config:
    """How :func:`~trio_asgi.serve` listens and behaves.

    Every field has a default, so ``Config()`` serves on http://127.0.0.1:8000. Construct with
    keywords: ``Config(port=0, keep_alive_timeout=2.0)``; derive variants with
    :func:`dataclasses.replace`.

    Attributes:
        host (str): Address to listen on. ``"127.0.0.1"`` (the default) for this machine only,
            ``"0.0.0.0"`` for every IPv4 interface, ``"::"`` for IPv6, or a host name, which
            may resolve to several addresses (all are listened on).
        port (int): TCP port, 0 to 65535. ``0`` asks the OS for a free port; read it back
            from what ``await nursery.start(serve, app, config)`` returns.
        root_path (str): The path prefix the app is mounted under behind a proxy, e.g.
            ``"/api"`` (ASGI ``scope["root_path"]``, WSGI's ``SCRIPT_NAME``). ``""`` or a
            string that starts with ``/`` and does not end with ``/``. ``scope["path"]`` is
            the request path as received and is *not* prefixed with it (see docs/asgi.md).
        lifespan (str): ``"auto"`` (default), ``"on"`` or ``"off"``; see
            :data:`LifespanMode` and the ASGI lifespan spec 2.0.
        access_log (bool): Log one line per response to the ``trio_asgi.access`` logger.
        keep_alive_timeout (float): Seconds an idle keep-alive connection waits for the first
            byte of its next request (RFC 9112 section 9.3) before the server closes it; a new
            connection gets as long for its first. Once a head has begun,
            ``request_header_timeout`` applies instead. Default 5.
        graceful_timeout (float): Seconds in-flight requests get to finish once graceful
            shutdown starts; then they are cancelled. ``math.inf`` waits for ever. Default 10.
        disconnect_timeout (float): Seconds an app may keep running after its client
            disconnected (it sees ``http.disconnect`` at once); then its task is cancelled.
            Default 3.
        date_header (bool): Add a ``Date`` header (RFC 9110 section 6.6.1) to responses that
            lack one.
        server_header (bool): Add ``Server: trio-asgi`` to responses that lack one.
        body_buffer_size (int): Bytes of request body the server reads ahead of the app.
            When this much is waiting for ``receive()``, the server stops reading the
            socket (backpressure), so a fast client cannot make it buffer an upload.
            Default 65536 (64 KiB); at least 1024.
        http (str): The HTTP/1.1 request parser: ``"auto"`` (default: httptools if it is
            installed, else h11), ``"h11"`` or ``"httptools"``; see :data:`HTTPMode`.
        ws (str): ``"auto"`` (default) or ``"none"``; see :data:`WebSocketMode`.
        ws_max_size (int): Bytes a received WebSocket message may have, after
            decompression (text in UTF-8 bytes; every frame but a message's last counts
            as at least 6 bytes); a larger one closes the connection with code 1009 (RFC
            6455 section 7.4.1) without buffering or inflating the rest. Default 16 MiB.
        ws_max_queue (int): Received WebSocket messages the server holds for the app's
            ``receive()``; when this many wait, or the waiting messages and the one being
            received hold ``ws_max_size`` bytes, it stops reading the socket
            (backpressure). Default 32.
        ws_ping_interval (float): Seconds between the server's keepalive pings; 0 turns
            them off. Default 20.
        ws_ping_timeout (float): Seconds a ping waits for its pong; a peer that misses it is
            closed with code 1011 and the app sees ``websocket.disconnect``. Default 20.
        ws_per_message_deflate (bool): Offer permessage-deflate (RFC 7692) when the client
            asks for it. Default on.
        request_header_timeout (float): Seconds the whole request head may take to arrive,
            from its first byte; then the client gets 408 and the connection closes (the
            slowloris defence). Default 10.
        body_read_timeout (float): Seconds the app may wait in ``receive()`` for the next
            bytes of a request body; then ``receive()`` returns ``http.disconnect`` and the
            client gets 408 if no response has started. Default 60.
        lifespan_startup_timeout (float): Seconds lifespan startup may take; then it counts
            as failed. Default 60.
        lifespan_shutdown_timeout (float): Seconds lifespan shutdown may take; then the
            lifespan task is cancelled. Default 30.
        max_header_size (int): Bytes a request head (request line and headers) may have;
            a larger one gets 431 (RFC 6585). Default 16384 (16 KiB).
        max_request_body_size (int | None): Bytes a request body may have; a larger one gets
            413 as soon as its ``Content-Length`` or the bytes received exceed it. ``None``
            (default): no limit.
        max_connections (int | None): Open connections at most; a connection beyond it is
            answered 503 and closed at once (the accept loop never waits). ``None``
            (default): no limit.
        max_requests_per_connection (int | None): Requests served on one keep-alive
            connection before the server closes it (its last response says
            ``Connection: close``). ``None`` (default): no limit.
        backlog (int): The listening sockets' accept queue length (``listen(2)``).
            Default 2048.

    Raises:
        ConfigError: a field has the wrong type or a value out of range.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    root_path: str = ""
    lifespan: LifespanMode = "auto"
    access_log: bool = True
    keep_alive_timeout: float = 5.0
    graceful_timeout: float = 10.0
    disconnect_timeout: float = 3.0
    date_header: bool = True
    server_header: bool = True
    body_buffer_size: int = 65536
    http: HTTPMode = "auto"
    ws: WebSocketMode = "auto"
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    ws_per_message_deflate: bool = True
    request_header_timeout: float = 10.0
    body_read_timeout: float = 60.0
    lifespan_startup_timeout: float = 60.0
    lifespan_shutdown_timeout: float = 30.0
    max_header_size: int = 16384
    max_request_body_size: int | None = None
    max_connections: int | None = None
    max_requests_per_connection: int | None = None
    backlog: int = 2048

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a non-empty str, not {self.host!r}")
        if not _is_int(self.port) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an int from 0 to 65535, not {self.port!r}")
        if not isinstance(self.root_path, str) or (
            self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/"))
        ):
            raise ConfigError(
                "root_path must be '' or start with '/' and not end with '/' "
                f"(e.g. '/api'), not {self.root_path!r}"
            )
        if self.lifespan not in _LIFESPAN_MODES:
            raise ConfigError(f"lifespan must be one of 'auto', 'on', 'off', not {self.lifespan!r}")
        if self.http not in _HTTP_MODES:
            raise ConfigError(f"http must be one of 'auto', 'h11', 'httptools', not {self.http!r}")
        if self.http == "httptools" and not _have_httptools():
            raise ConfigError(
                "http='httptools' needs the httptools package: "
                "pip install 'trio-asgi[fast]' (or use http='h11')"
            )
        if self.ws not in _WS_MODES:
            raise ConfigError(f"ws must be 'auto' or 'none', not {self.ws!r}")
        for name in ("access_log", "date_header", "server_header", "ws_per_message_deflate"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be a bool, not {value!r}")
        _check_seconds("keep_alive_timeout", self.keep_alive_timeout, allow_inf=True)
        _check_seconds("graceful_timeout", self.graceful_timeout, allow_inf=True)
        _check_seconds("disconnect_timeout", self.disconnect_timeout, allow_inf=True)
        _check_seconds("ws_ping_interval", self.ws_ping_interval, allow_inf=False)
        _check_seconds("ws_ping_timeout", self.ws_ping_timeout, allow_inf=True)
        if not _is_int(self.ws_max_size) or self.ws_max_size < 1:
            raise ConfigError(
                f"ws_max_size must be an int of at least 1 (bytes), not {self.ws_max_size!r}"
            )
        if not _is_int(self.ws_max_queue) or self.ws_max_queue < 1:
            raise ConfigError(
                f"ws_max_queue must be an int of at least 1 (messages), not {self.ws_max_queue!r}"
            )
        for name in (
            "request_header_timeout",
            "body_read_timeout",
            "lifespan_startup_timeout",
            "lifespan_shutdown_timeout",
        ):
            _check_seconds(name, getattr(self, name), allow_inf=True)
        _check_count("max_header_size", self.max_header_size, minimum=1024, unit="bytes")
        _check_count("backlog", self.backlog, minimum=1, unit="connections")
        for name, unit in (
            ("max_request_body_size", "bytes"),
            ("max_connections", "connections"),
            ("max_requests_per_connection", "requests"),
        ):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name), minimum=1, unit=unit, optional=True)
        if not _is_int(self.body_buffer_size) or self.body_buffer_size < 1024:
            raise ConfigError(
                f"body_buffer_size must be an int of at least 1024 (bytes), "
                f"not {self.body_buffer_size!r}"
            )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(
    name: str, value: object, *, minimum: int, unit: str, optional: bool = False
) -> None:
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        none = " or None for no limit" if optional else ""
        raise ConfigError(
            f"{name} must be an int of at least {minimum} ({unit}){none}, not {value!r}"
        )


def _check_seconds(name: str, value: object, *, allow_inf: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
        or (math.isinf(value) and not allow_inf)
    ):
        limit = "a number of seconds >= 0" + (" (inf for no limit)" if allow_inf else "")
        raise ConfigError(f"{name} must be {limit}, not {value!r}")


def _have_httptools() -> bool:
    from ._httptools_parser import HAVE_HTTPTOOLS

    return HAVE_HTTPTOOLS
