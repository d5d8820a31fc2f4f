"""One accepted connection, from the accept loop to its close: the seam between the socket
and the protocol.

``serve()``'s accept loop calls :func:`open_connection` synchronously for every accepted
stream, then spawns :func:`handle_connection` as that connection's task::

    "trio-asgi connection" (handle_connection)    opens the connection nursery; in it, before
    │                                             the protocol: the PROXY protocol header (if
    │                                             on), the TLS handshake (on a TLS listener);
    │                                             owns the close
    └── the protocol's tasks (HTTP/1.1 today: HTTP11Connection.start_reader), all in that nursery

What goes between ``accept()`` and the protocol goes here, in this order:

1. :func:`open_connection` (synchronous, in the accept loop): the connection's
   :class:`~trio_asgi._types.ConnectionInfo` (its addresses; its scheme, ``https`` on a TLS
   listener), its transport (``_net/transport.py``; ``_net/tls_transport.py``'s
   ``TLSTransport`` for a TCP stream on a TLS listener, Unix sockets staying plain) and
   the protocol object;
2. with ``Config.proxy_protocol``, the PROXY protocol header (:func:`read_proxy_header`),
   read in the clear, before TLS;
3. on a TLS listener, the handshake (:func:`start_tls`), under ``tls_handshake_timeout``;
4. the protocol's reader. The HTTP/2 choice (ALPN) will go between 3 and 4.

Steps 2 and 3 run in the connection nursery, each in the connection's prelude scope
(``HTTP11Connection.prelude_scope``): its deadline is the step's timeout, and graceful
shutdown cancels it as it cancels an idle connection's read.
"""

from __future__ import annotations

from typing import Final

import trio

from ._context import ServerContext
from ._h11.connection import HTTP11Connection
from ._h11.reader import LINGER_TIMEOUT
from ._h11.settings import HTTP11Settings
from ._logging import error_logger, format_address
from ._net.listeners import unix_address
from ._net.proxy_protocol import Family, ProxyHeader, ProxyProtocolError, ProxyProtocolReader
from ._net.tls import ServerTLS
from ._net.tls_transport import TLSTransport
from ._net.transport import Transport, open_transport
from ._trust import TrustedProxies
from ._types import Address, ConnectionInfo, UnixAddress

__all__ = [
    "connection_info",
    "handle_connection",
    "open_connection",
    "read_proxy_header",
    "refuse_connection",
    "start_tls",
]


def connection_info(stream: trio.abc.Stream, context: ServerContext) -> ConnectionInfo:
    """The client and server addresses of ``stream`` and its scheme, ``"http"``.

    TCP: ``(host, port)`` each (None when the peer already reset the connection). A Unix
    socket: server ``UnixAddress(path, None)`` and client None (ASGI HTTP spec, "HTTP
    Connection Scope"). Any other stream: None and None.

    The server address is the shared tuple of :meth:`ServerContext.local_address`: a
    server has a handful, so thousands of idle connections need not hold a copy each.
    """
    client: Address | None = None
    server: Address | None = None
    if not isinstance(stream, trio.SocketStream):
        return ConnectionInfo(None, None, "http")
    if stream.socket.family == trio.socket.AF_UNIX:
        # ASGI: server is [path, None]; the client of a Unix socket has no address.
        return ConnectionInfo(None, unix_address(stream.socket.getsockname()), "http")
    if stream.socket.family in _TCP_FAMILIES:
        try:
            peer = stream.socket.getpeername()
            local = stream.socket.getsockname()
        except OSError:  # the peer reset the connection before we asked: no address
            pass
        else:
            # An IPv4 peer address is already a (str, int) pair: keep it rather than copy it.
            client = peer if len(peer) == 2 else (str(peer[0]), int(peer[1]))
            server = context.local_address(str(local[0]), int(local[1]))
    return ConnectionInfo(client, server, "http")


def open_connection(
    stream: trio.abc.Stream,
    context: ServerContext,
    settings: HTTP11Settings,
    tls: ServerTLS | None = None,
) -> HTTP11Connection:
    """The synchronous first step of a connection: its info, its transport, its protocol
    object, which joins ``context.connections`` at once (so ``max_connections`` counts it
    before its task runs). Spawn :func:`handle_connection` with the result.

    ``tls``: the listener serves TLS with this context (``ReloadableContext.current``):
    a TCP stream then gets a ``TLSTransport`` and the scheme ``https``; a Unix socket
    stays plain.
    """
    info = connection_info(stream, context)
    transport: Transport
    if tls is not None and is_tcp(stream):
        assert isinstance(stream, trio.SocketStream)  # is_tcp
        transport = TLSTransport(stream, tls)
        info = info._replace(scheme="https")
    else:
        transport = open_transport(stream)
    return HTTP11Connection(transport, info, context, settings)


def is_tcp(stream: trio.abc.Stream) -> bool:
    """``stream`` is a TCP socket (IPv4 or IPv6), the kind TLS is served on."""
    return isinstance(stream, trio.SocketStream) and stream.socket.family in _TCP_FAMILIES


async def handle_connection(connection: HTTP11Connection) -> None:
    """The connection task: open the connection nursery, run the protocol in it, close.

    The task's whole body (no wrapper: every idle keep-alive connection holds its frames).
    An unexpected exception, which would be a bug in trio-asgi, is logged once and ends
    this connection only, never the server; cancellation propagates as usual.

    Resource handling:
        The transport is always closed, and the connection leaves ``connections``, when
        this returns.
    """
    try:
        async with trio.open_nursery() as nursery:
            transport = connection.transport
            trusted = connection.settings.proxy_protocol
            if trusted is None and not isinstance(transport, TLSTransport):
                connection.start_reader(nursery)  # plain HTTP: the common case, no prelude
                return
            initial = b""  # what the prelude read beyond itself: the protocol's first bytes
            if trusted is not None:
                header_rest = await read_proxy_header(connection, trusted, nursery)
                if header_rest is None:
                    return  # refused: the finally below closes it
                initial = header_rest  # b"" under TLS: the ClientHello stays in the socket
            if isinstance(transport, TLSTransport) and not await start_tls(
                connection, transport, nursery
            ):
                return
            connection.start_reader(nursery, initial)
    except Exception:  # noqa: BLE001 - a bug in one connection must not stop the server
        error_logger.exception(
            "Unexpected error on the connection from %s", format_address(connection.client)
        )
    finally:
        connection.context.connections.discard(connection)
        await connection.close()


async def read_proxy_header(
    connection: HTTP11Connection, trusted: TrustedProxies, nursery: trio.Nursery
) -> bytes | None:
    """``Config.proxy_protocol``: read the PROXY protocol header (v1 or v2) that must begin
    the connection, and give the connection the addresses it names.

    The peer must be one of ``trusted`` (``forwarded_allow_ips``): by the spec (HAProxy's
    doc/proxy-protocol.txt, section 1) a receiver never guesses whether a header is there,
    so another peer's connection is refused, not served as plain HTTP. The header must
    arrive within ``request_header_timeout`` seconds; graceful shutdown ends the wait (the
    connection's prelude scope; ``nursery`` is the connection nursery). INET and INET6
    headers set the client to the source and the server to the destination; UNIX ones,
    client None and server ``UnixAddress(destination_path, None)``; UNSPEC (v2 LOCAL, v1
    UNKNOWN) keeps the socket's. A v2 header saying the client spoke TLS to the proxy
    (PP2_TYPE_SSL with PP2_CLIENT_SSL, spec 2.2.5) makes the scheme ``"https"``.

    Returns:
        The bytes after the header (the start of the HTTP stream, maybe ``b""``), or None
        if the connection is to be closed: an untrusted peer, a timeout, EOF, a malformed
        header, each logged once at DEBUG, or graceful shutdown.
    """
    client = connection.client
    if not trusted.trusts(client[0] if client is not None else None, connection.peer_is_unix):
        error_logger.debug(
            "PROXY protocol: refused a connection from %s, not a trusted proxy",
            format_address(client),
        )
        return None
    transport = connection.transport
    header = None
    with connection.prelude_scope(nursery, connection.settings.request_header_timeout):
        try:
            if isinstance(transport, TLSTransport):
                header = await _read_proxy_header_before_tls(transport)
            else:
                reader = ProxyProtocolReader()
                while header is None:
                    header = reader.feed(await transport.receive_some())
        except ProxyProtocolError as exc:
            if not connection.closing:
                error_logger.debug(
                    "PROXY protocol: invalid header from %s: %s", format_address(client), exc
                )
            return None
    if connection.closing:
        return None  # graceful shutdown began: no request is served
    if header is None:
        error_logger.debug("PROXY protocol: header timed out from %s", format_address(client))
        return None
    family = header.family
    if family is Family.INET or family is Family.INET6:
        assert header.destination is not None  # an INET or INET6 header has both addresses
        host, port = header.destination
        assert port is not None  # a (host, port) pair: only a UnixAddress has None
        server = connection.context.local_address(host, port)
        connection.set_addresses(header.source, server, peer_is_unix=False)
    elif family is Family.UNIX:
        path = header.destination_path
        connection.set_addresses(
            None, UnixAddress(path) if path is not None else None, peer_is_unix=True
        )
    if header.tls:  # v2 PP2_TYPE_SSL with PP2_CLIENT_SSL: the proxy terminated TLS
        connection.scheme = "https"  # and "wss" for a WebSocket
    return header.rest


async def _read_proxy_header_before_tls(transport: TLSTransport) -> ProxyHeader:
    """The PROXY header in the clear ahead of a TLS handshake, read exactly (its ``rest``
    is then ``b""``: the bytes after it stay in the socket for OpenSSL).

    Raises:
        ProxyProtocolError: the header is malformed, or the connection ended before it.
    """

    def parse(data: bytes) -> int | None:
        header = ProxyProtocolReader().feed(data)  # the whole prefix so far, each time
        return None if header is None else len(data) - len(header.rest)

    prefix = await transport.read_plain_prefix(parse)
    header = ProxyProtocolReader().feed(prefix) if prefix else None
    if header is None:
        raise ProxyProtocolError("connection closed before a PROXY header")
    return header  # exactly the prefix: its rest is b""


async def start_tls(
    connection: HTTP11Connection, transport: TLSTransport, nursery: trio.Nursery
) -> bool:
    """The TLS handshake of a connection on a TLS listener (RFC 8446), before the protocol.

    Runs in the connection's prelude scope, due in ``tls_handshake_timeout`` seconds, so a
    client that stalls is cut at that deadline and graceful shutdown ends the wait;
    ``nursery`` is the connection nursery. Only this connection's task waits: the accept
    loop and other clients never do.

    Returns:
        True once the handshake completed: the connection's scopes then carry the ASGI TLS
        extension (``connection.tls``). False if the connection is to be closed: the
        handshake failed (a bad or missing client certificate, no common protocol or
        cipher, plain HTTP, a scanner), timed out, or graceful shutdown began; each logged
        once at DEBUG, without a traceback.
    """
    timeout = connection.settings.tls_handshake_timeout
    failure: str | None = f"TLS handshake timed out after {timeout} s"
    with connection.prelude_scope(nursery, timeout):
        failure = await transport.handshake()
    if connection.closing:
        return False  # graceful shutdown began: no request is served
    if failure is not None:
        error_logger.debug("%s (from %s)", failure, format_address(connection.client))
        return False
    connection.tls = transport.extension
    return True


_TCP_FAMILIES: Final = frozenset({trio.socket.AF_INET, trio.socket.AF_INET6})

_SERVICE_UNAVAILABLE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 24\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"\r\n"
    b"503 Service Unavailable\n"
)


async def refuse_connection(stream: trio.abc.Stream, limit: int) -> None:
    """Over ``max_connections``: answer 503 without reading the request, then close.

    A lingering close (FIN, then drain for a moment) so the client reads the 503 instead of a
    reset. Bounded by ``LINGER_TIMEOUT``; the accept loop never waits for it.
    """
    error_logger.info("Connection limit (%d) reached; refused a connection with 503", limit)
    with trio.move_on_after(LINGER_TIMEOUT):
        try:
            await stream.send_all(_SERVICE_UNAVAILABLE)
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone: nothing more to tell it
    await trio.aclose_forcefully(stream)
