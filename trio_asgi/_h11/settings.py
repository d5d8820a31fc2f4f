"""What an HTTP/1.1 connection reads of the configuration, taken once per server.

:class:`HTTP11Settings` is built from :class:`~trio_asgi.Config` by
:meth:`HTTP11Settings.from_config` when ``serve()`` starts, and every connection of that
server shares it: a connection gets these values, not the whole ``Config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._config import Config, HTTPMode
from .._http.exchange import ExchangeSettings
from .._trust import TrustedProxies
from .._ws.settings import WebSocketSettings
from .httptools import HAVE_HTTPTOOLS, HttptoolsParser
from .parsing import H11Parser, RequestParser
from .response import ServerHeaders

__all__ = ["HTTP11Settings", "parser_factory"]


def parser_factory(mode: HTTPMode) -> Callable[[int], RequestParser]:
    """The parser class for ``Config.http`` (``"h11"``, ``"httptools"``, or ``"auto"``),
    called with ``max_header_size`` per connection; looked up once per server.

    Raises:
        ImportError: ``mode`` is ``"httptools"`` and httptools is not installed (``Config``
            checks this first, so a server never starts without its parser).
    """
    if mode == "h11":
        return H11Parser
    if mode == "httptools" or HAVE_HTTPTOOLS:
        return HttptoolsParser
    return H11Parser


@dataclass(frozen=True, slots=True)
class HTTP11Settings:
    """The values one HTTP/1.1 connection needs (units as in :class:`~trio_asgi.Config`).

    Attributes:
        new_parser: makes a connection's request parser, ``new_parser(max_header_size)``.
        exchange: what each request's exchange reads (body limit, timeouts, access log).
        keep_alive_timeout: seconds an idle connection is kept open.
        request_header_timeout: seconds a request head may take to arrive (then 408).
        body_buffer_size: bytes of request body (or pipelined requests) read ahead.
        max_header_size: bytes a request head may have (then 431).
        max_requests_per_connection: requests served before ``Connection: close``, or None.
        websocket: what a WebSocket session reads, or None if ``Upgrade: websocket`` requests
            are served as plain HTTP (``Config.ws="none"``).
        root_path: ``scope["root_path"]``.
        proxy: whose proxy headers are believed (``Config.forwarded_allow_ips``, parsed), or
            None when ``Config.proxy_headers`` is off (they are never read then).
        proxy_protocol: whose PROXY protocol header is read before HTTP (the same trust
            list), or None when ``Config.proxy_protocol`` is off (no header is read then).
        tls_handshake_timeout: seconds a TLS connection's handshake may take (then it is
            closed), read by the connection seam.
        server_headers: the ``Date`` and ``Server`` headers added to responses that lack
            them (as configured), for every connection of the server.
    """

    new_parser: Callable[[int], RequestParser]
    exchange: ExchangeSettings
    keep_alive_timeout: float
    request_header_timeout: float
    body_buffer_size: int
    max_header_size: int
    max_requests_per_connection: int | None
    websocket: WebSocketSettings | None
    root_path: str
    server_headers: ServerHeaders
    proxy: TrustedProxies | None
    proxy_protocol: TrustedProxies | None = None
    tls_handshake_timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> HTTP11Settings:
        trusted = TrustedProxies.parse(config.forwarded_allow_ips)
        return cls(
            new_parser=parser_factory(config.http),
            exchange=ExchangeSettings.from_config(config),
            keep_alive_timeout=config.keep_alive_timeout,
            request_header_timeout=config.request_header_timeout,
            body_buffer_size=config.body_buffer_size,
            max_header_size=config.max_header_size,
            max_requests_per_connection=config.max_requests_per_connection,
            websocket=WebSocketSettings.from_config(config) if config.ws == "auto" else None,
            root_path=config.root_path,
            server_headers=ServerHeaders(date=config.date_header, server=config.server_header),
            proxy=trusted if config.proxy_headers else None,
            proxy_protocol=trusted if config.proxy_protocol else None,
            tls_handshake_timeout=config.tls_handshake_timeout,
        )
