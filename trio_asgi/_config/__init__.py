"""The server's settings: one frozen, keyword-only dataclass, validated on construction.

Conventions: every ``*_timeout`` field is a number of seconds (``math.inf`` means "no limit"
where the field says so), every ``*_size`` field is a number of bytes. A bad value raises
:class:`~trio_asgi.ConfigError` naming the field, the value and what it should be, so the CLI
can print it as is.

Each field's ``dataclasses.field(metadata=...)`` holds an :class:`~trio_asgi._option.Option`:
the field's ``--help`` text and its row in docs/configuration.md. That is the one source of
both views: ``_cli.py`` builds its server options from it in one loop, and ``_config_docs.py``
renders the option table (``python -m trio_asgi._config_docs`` rewrites the doc; a test,
tests/proto/test_docs_generated.py, fails when it is stale). The attribute docs stay by hand.
The shared value checks are in ``checks.py``, the mode fields' types and values in ``modes.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .._errors import ConfigError
from .._option import option as _option
from .checks import check_count, check_limits, check_seconds
from .modes import (
    EventLoop,
    HTTPMode,
    Interface,
    LifespanMode,
    WebSocketMode,
    check_installed,
    check_mode,
)
from .network import CertReqs, NetworkFields

__all__ = [
    "CertReqs",
    "Config",
    "EventLoop",
    "HTTPMode",
    "Interface",
    "LifespanMode",
    "WebSocketMode",
]


@dataclass(frozen=True, kw_only=True)
class Config(NetworkFields):
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
        bind (tuple[str, ...]): Where to listen: ``HOST:PORT``, ``[IPV6]:PORT``,
            ``unix:PATH``, ``fd://N``. ``bind``, ``uds`` (a Unix socket path) and ``fd`` (an
            inherited listening socket) replace ``host`` and ``port`` when any is given; a bad
            bind raises ``ConfigError`` as ``serve()`` starts. ``uds_permissions``: the mode
            of Unix socket files (``0o660``); None keeps the umask's.
        ssl_certfile (str | None): Serve TLS on the TCP listeners: the PEM file of the
            certificate, then its intermediates (and the key unless ``ssl_keyfile``).
            ``ssl_keyfile``, ``ssl_keyfile_password``, ``ssl_ca_certs``, ``ssl_cert_reqs``
            (``"none"``, ``"optional"``, ``"required"``: client certificates) and
            ``ssl_ciphers`` (OpenSSL's TLS 1.2 cipher string) are uvicorn's options; the
            files are read when ``serve()`` starts (``ConfigError`` naming the file if one
            cannot be used) and again on SIGHUP. ``ssl_context``: an ``ssl.SSLContext`` made
            in code instead of the files. ``tls_handshake_timeout``: seconds a handshake may
            take (default 10). TLS 1.2 at least, ALPN ``http/1.1`` (RFC 8446, RFC 7301).
        root_path (str): The path prefix the app is mounted under behind a proxy, e.g.
            ``"/api"`` (ASGI ``scope["root_path"]``, WSGI's ``SCRIPT_NAME``). ``""`` or a
            string that starts with ``/`` and does not end with ``/``. ``scope["path"]`` is
            the request path as received and is *not* prefixed with it (see docs/asgi.md).
        proxy_headers (bool): Believe proxy headers from ``forwarded_allow_ips`` peers (default on).
        forwarded_allow_ips (str): Those peers: IPs, CIDRs, ``unix``, ``*`` (docs/deployment.md).
        proxy_protocol (bool): Read a PROXY protocol v1/v2 header from those peers (default off).
        lifespan (str): ``"auto"`` (default), ``"on"`` or ``"off"``; see
            :data:`LifespanMode` and the ASGI lifespan spec 2.0.
        interface (str): How the app is called: ``"auto"`` (default), ``"asgi3"``,
            ``"asgi2"`` or ``"wsgi"``; see :data:`Interface`.
        loop (str): ``"trio"`` (default) or ``"asyncio"``; see :data:`EventLoop`.
        wsgi_threads (int): Worker threads a WSGI app's requests run in at most (a
            ``trio.CapacityLimiter``); more requests wait for a thread. Default 10.
        access_log (bool): Log one line per response to the ``trio_asgi.access`` logger.
        graceful_timeout (float): Seconds in-flight requests get to finish once graceful
            shutdown starts; then they are cancelled. ``math.inf`` waits for ever. Default 10.
        keep_alive_timeout (float): Seconds an idle keep-alive connection waits for the first
            byte of its next request (RFC 9112 section 9.3) before the server closes it; a new
            connection gets as long for its first. Once a head has begun,
            ``request_header_timeout`` applies instead. Default 5.
        disconnect_timeout (float): Seconds an app may keep running after its client
            disconnected (it sees ``http.disconnect`` at once); then its task is cancelled.
            Default 3.
        request_timeout (float): Seconds an HTTP request's app call may take to complete its
            response; then it is cancelled, and the client gets 504 if no response had
            started (the connection is aborted if one had). WebSocket sessions are not
            limited. ``math.inf`` (the default): no limit.
        date_header (bool): Add a ``Date`` header (RFC 9110 section 6.6.1) to responses that
            lack one.
        server_header (bool): Add ``Server: trio-asgi`` to responses that lack one.
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
        body_buffer_size (int): Bytes of request body the server reads ahead of the app.
            When this much is waiting for ``receive()``, the server stops reading the
            socket (backpressure), so a fast client cannot make it buffer an upload.
            Default 65536 (64 KiB); at least 1024.

    Raises:
        ConfigError: a field has the wrong type or a value out of range.
    """

    lifespan: LifespanMode = field(
        default="auto",
        metadata=_option(
            cli_help="Run the ASGI lifespan protocol: auto (if the app supports it), on, or off.",
            meaning="Run the ASGI lifespan protocol. `auto`: run it, and serve without it if "
            "the app raises before startup completes. `on`: such an exception is a startup "
            "failure. `off`: never call the app with the lifespan scope. See "
            "[asgi.md](asgi.md#lifespan-spec-20).",
        ),
    )
    interface: Interface = field(
        default="auto",
        metadata=_option(
            cli_help="How to call the app: auto (from its signature), asgi3, asgi2 or wsgi.",
            meaning="`asgi3`: `await app(scope, receive, send)`. `asgi2`: the ASGI 2 double "
            "callable, `await app(scope)(receive, send)`; its scopes say "
            '`scope["asgi"]["version"] == "2.0"`. `wsgi`: a PEP 3333 app, '
            "`app(environ, start_response)`, run in worker threads. `auto`: decided from the "
            "callable when the server starts, with one log line that says what was found; a "
            "callable that fits none is refused at startup. See [frameworks.md](frameworks.md).",
        ),
    )
    loop: EventLoop = field(
        default="trio",
        metadata=_option(
            cli_help="Where the app runs: trio, or asyncio for an app that needs asyncio "
            "(Django's ASGI handler), hosted in Trio by trio-asyncio (pip install '.[asyncio]').",
            meaning="`asyncio`: an ASGI 3 or 2 app runs as asyncio code on a loop that "
            "trio-asyncio hosts in Trio while `serve()` runs; disconnects, timeouts and shutdown "
            "cancel its work as a Trio app's (it sees `asyncio.CancelledError`). Needs "
            "`pip install '.[asyncio]'` (a `ConfigError` otherwise); WSGI apps ignore it. See "
            "[frameworks.md](frameworks.md).",
        ),
    )
    wsgi_threads: int = field(
        default=10,
        metadata=_option(
            cli_help="Worker threads for a WSGI app's requests, at most.",
            doc_type="`int`, threads, at least 1",
            meaning="How many requests of a WSGI app run at once, each in its own worker "
            "thread (a `trio.CapacityLimiter`); more wait for a thread. The event loop never "
            "waits for a WSGI app.",
        ),
    )
    access_log: bool = field(
        default=True,
        metadata=_option(
            cli_help="Log one line per response.",
            meaning="One line per response on the `trio_asgi.access` logger.",
        ),
    )
    graceful_timeout: float = field(
        default=10.0,
        metadata=_option(
            cli_help="Seconds in-flight requests get to finish once shutdown starts "
            "(inf: no limit).",
            doc_type="`float`, seconds",
            meaning="How long requests in flight get to finish once graceful shutdown starts; "
            "then they are cancelled. `inf`: wait for them however long they take.",
        ),
    )
    keep_alive_timeout: float = field(
        default=5.0,
        metadata=_option(
            cli_help="Seconds an idle keep-alive connection is kept open.",
            doc_type="`float`, seconds",
            meaning="How long an idle keep-alive connection (or a new one) waits for the first "
            "byte of its next request before the server closes it. Once a request head has "
            "begun, `request_header_timeout` applies instead; neither runs while a request is "
            "in progress.",
        ),
    )
    disconnect_timeout: float = field(
        default=3.0,
        metadata=_option(
            cli_help="Seconds an app may keep running after its client disconnected.",
            doc_type="`float`, seconds",
            meaning="How long an app may keep running after its client disconnected, before "
            "its task is cancelled. The app sees `http.disconnect` at once. Not applied to an "
            "app whose response was complete.",
        ),
    )
    request_timeout: float = field(
        default=math.inf,
        metadata=_option(
            cli_help="Seconds an HTTP request's app call may take to complete its response "
            "(inf: no limit).",
            show_default="no limit",
            doc_type="`float`, seconds",
            meaning="An app call that has not completed its response in this time is "
            "cancelled: the client gets 504 if no response had started, and the connection is "
            "closed if one had (never half a response on a keep-alive connection). Logged "
            "once with the request. WebSocket sessions are not limited by it.",
        ),
    )
    date_header: bool = field(
        default=True,
        metadata=_option(
            cli_help="Add a Date header to responses that lack one.",
            meaning="Add a `Date` header (RFC 9110 section 6.6.1) to responses that lack one.",
        ),
    )
    server_header: bool = field(
        default=True,
        metadata=_option(
            cli_help="Add 'Server: trio-asgi' to responses that lack one.",
            meaning="Add `Server: trio-asgi` to responses that lack one.",
        ),
    )
    http: HTTPMode = field(
        default="auto",
        metadata=_option(
            cli_help="HTTP/1.1 parser: auto (httptools if installed, else h11), h11 (pure Python, "
            "the reference) or httptools (faster; pip install httptools).",
            meaning="The HTTP/1.1 request parser. `h11`: pure Python, the reference. "
            "`httptools`: [httptools](https://github.com/MagicStack/httptools) (llhttp, in C), "
            "several times faster; install it with `pip install httptools` (from a checkout, "
            "`pip install '.[fast]'` does the same). `auto`: "
            "httptools if it is installed, else h11. Both turn requests into the same events "
            "and answer malformed ones with the same status; chunked bodies are decoded by one "
            "strict decoder whichever parser runs (see [internet.md](internet.md)); responses "
            "are written by trio-asgi itself either way. Asking for `httptools` without it "
            "installed is a `ConfigError` that says what to install.",
        ),
    )
    ws: WebSocketMode = field(
        default="auto",
        metadata=_option(
            cli_help="WebSocket support: auto (upgrade WebSocket handshakes) or none "
            "(serve them as HTTP).",
            meaning="`auto`: a valid WebSocket handshake (a `GET` with `Upgrade: websocket`) "
            "becomes a `websocket` scope. `none`: no WebSocket support; such requests reach the "
            "app as plain `http` requests. See [websocket.md](websocket.md).",
        ),
    )
    ws_max_size: int = field(
        default=16 * 1024 * 1024,
        metadata=_option(
            cli_help="Bytes a received WebSocket message may have; a larger one closes with code "
            "1009.",
            doc_type="`int`, bytes, at least 1",
            doc_default_note="(16 MiB)",
            meaning="The largest WebSocket message the server accepts, after decompression "
            "(text in UTF-8 bytes), counting every fragment, each frame but the last as at "
            "least 6 bytes. A larger one closes the connection with code 1009; the rest of it "
            "is never buffered or inflated.",
        ),
    )
    ws_max_queue: int = field(
        default=32,
        metadata=_option(
            cli_help="Received WebSocket messages held for the app before the server stops "
            "reading.",
            doc_type="`int`, messages, at least 1",
            meaning="Received WebSocket messages held for the app's `receive()`. With this "
            "many waiting, or with the waiting ones and the one being received holding "
            "`ws_max_size` bytes, the server stops reading the socket (backpressure).",
        ),
    )
    ws_ping_interval: float = field(
        default=20.0,
        metadata=_option(
            cli_help="Seconds between WebSocket keepalive pings (0: no pings).",
            doc_type="`float`, seconds",
            meaning="Seconds between the server's keepalive pings on an open WebSocket. `0` "
            "turns pings off. `inf` is not accepted (use `0`).",
        ),
    )
    ws_ping_timeout: float = field(
        default=20.0,
        metadata=_option(
            cli_help="Seconds a WebSocket ping waits for its pong before closing with 1011 "
            "(inf: no limit).",
            doc_type="`float`, seconds",
            meaning="How long a ping waits for its pong. A client that misses it is closed "
            "with code 1011 and the app sees `websocket.disconnect`. `inf`: wait for ever.",
        ),
    )
    ws_per_message_deflate: bool = field(
        default=True,
        metadata=_option(
            cli_help="Offer WebSocket permessage-deflate compression to clients that ask for it.",
            meaning="Offer permessage-deflate compression (RFC 7692) to clients that ask for it.",
        ),
    )
    request_header_timeout: float = field(
        default=10.0,
        metadata=_option(
            cli_help="Seconds a request head may take to arrive, from its first byte "
            "(inf: no limit).",
            doc_type="`float`, seconds",
            meaning="The whole request head must arrive within this, from its first byte; "
            "then 408 and close (the slowloris defence).",
        ),
    )
    body_read_timeout: float = field(
        default=60.0,
        metadata=_option(
            cli_help="Seconds the app waits in receive() for more request body; then 408 "
            "(inf: no limit).",
            doc_type="`float`, seconds",
            meaning="How long the app may wait in `receive()` for the next body bytes; then "
            "`receive()` returns `http.disconnect` and the client gets 408 if no response has "
            "started.",
        ),
    )
    lifespan_startup_timeout: float = field(
        default=60.0,
        metadata=_option(
            cli_help="Seconds lifespan startup may take before it counts as failed "
            "(inf: no limit).",
            doc_type="`float`, seconds",
            meaning="Lifespan startup that takes longer counts as failed (`LifespanFailure`, "
            "exit 3).",
        ),
    )
    lifespan_shutdown_timeout: float = field(
        default=30.0,
        metadata=_option(
            cli_help="Seconds lifespan shutdown may take before it is cancelled (inf: no limit).",
            doc_type="`float`, seconds",
            meaning="Lifespan shutdown that takes longer is cancelled, with a WARNING.",
        ),
    )
    max_header_size: int = field(
        default=16384,
        metadata=_option(
            cli_help="Bytes a request head (request line and headers) may have; a larger one gets "
            "431.",
            doc_type="`int`, bytes, at least 1024",
            meaning="A longer request head (request line and headers, as received) gets 431.",
        ),
    )
    max_request_body_size: int | None = field(
        default=None,
        metadata=_option(
            cli_help="Bytes a request body may have; a larger one gets 413.",
            show_default="no limit",
            doc_type="`int`, bytes, or none",
            meaning="A longer body gets 413: at once for its `Content-Length`, or as soon as "
            "the bytes received exceed it.",
        ),
    )
    max_connections: int | None = field(
        default=None,
        metadata=_option(
            cli_help="Open connections at most; one more is answered 503 and closed.",
            show_default="no limit",
            doc_type="`int`, or none",
            meaning="Connections beyond it are answered 503 and closed; accepting never waits.",
        ),
    )
    max_requests_per_connection: int | None = field(
        default=None,
        metadata=_option(
            cli_help="Requests served on one keep-alive connection before the server closes it.",
            show_default="no limit",
            doc_type="`int`, or none",
            meaning="After this many requests a keep-alive connection's last response says "
            "`Connection: close`.",
        ),
    )
    backlog: int = field(
        default=2048,
        metadata=_option(
            cli_help="Length of the listening sockets' queue of connections not yet accepted.",
            doc_type="`int`",
            meaning="The listening sockets' accept queue (`listen(2)`; Linux caps it at "
            "`somaxconn`).",
        ),
    )
    body_buffer_size: int = field(
        default=65536,
        metadata=_option(
            cli_help=None,
            doc_type="`int`, bytes, at least 1024",
            doc_default_note="(64 KiB)",
            meaning="How much request body the server reads ahead of the app. With this much "
            "waiting for `receive()` the server stops reading the socket (backpressure), and "
            "it buffers at most this much of pipelined requests. `Config` only: the CLI has no "
            "option for it.",
        ),
    )

    def __post_init__(self) -> None:
        self.check_network()  # sockets, TLS, proxies: network.py
        for name in ("lifespan", "http", "ws", "interface", "loop"):
            check_mode(name, getattr(self, name))
        check_installed(self.http, self.loop)
        check_count("wsgi_threads", self.wsgi_threads, minimum=1, unit="threads")
        for name in (f.name for f in fields(self) if f.type == "bool"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool, not {getattr(self, name)!r}")
        for name in (f.name for f in fields(self) if f.name.endswith("_timeout")):
            check_seconds(name, getattr(self, name), allow_inf=True)
        check_seconds("ws_ping_interval", self.ws_ping_interval, allow_inf=False)
        check_count("ws_max_size", self.ws_max_size, minimum=1, unit="bytes")
        check_count("ws_max_queue", self.ws_max_queue, minimum=1, unit="messages")
        check_count("max_header_size", self.max_header_size, minimum=1024, unit="bytes")
        check_count("backlog", self.backlog, minimum=1, unit="connections")
        check_limits(
            self.max_request_body_size, self.max_connections, self.max_requests_per_connection
        )
        check_count("body_buffer_size", self.body_buffer_size, minimum=1024, unit="bytes")
