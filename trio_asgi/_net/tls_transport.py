"""TLS under one connection: ``trio.SSLStream`` as a :class:`~trio_asgi._net.transport.Transport`.

The connection seam (``_connection.py``) gives a TCP stream accepted on a TLS listener a
:class:`TLSTransport` instead of a plain one; the protocol above reads and writes it like
any other transport and never learns it is encrypted. The steps this module adds, in the
order the connection task takes them (RFC 8446 for TLS 1.3, RFC 5246 for 1.2):

1. With ``Config.proxy_protocol``, the PROXY header comes *before* TLS (HAProxy sends it in
   the clear, then the ClientHello): :meth:`TLSTransport.receive_plain` reads the raw
   socket, and :meth:`TLSTransport.unread` hands what followed the header to the TLS layer,
   which reads it first (a :class:`PrefixedStream` sits under ``SSLStream`` for that).
2. :meth:`TLSTransport.handshake`, which the connection task runs in its prelude scope (so
   ``tls_handshake_timeout`` and graceful shutdown end it). A failed handshake is returned
   as one line for the DEBUG log, never raised; plain HTTP sent to the TLS port is answered
   with a 400 in the clear that says to use ``https://``, as nginx does.
3. :attr:`TLSTransport.extension`: the ASGI TLS extension (``_net/tls.py``), built once the
   handshake is done, for every scope of the connection.
4. Closing: a connection whose handshake completed sends its ``close_notify`` alert (RFC
   8446 section 6.1) without waiting for the peer's, within ``CLOSE_NOTIFY_TIMEOUT``
   seconds (a peer that reads nothing cannot hold the close up); one that never completed
   the handshake, or whose stream broke, is closed at once.

What the plain path guarantees holds here too: writes are serialised and backpressured by
``SSLStream.send_all``, reading never raises for the peer's doing (a reset or an EOF
without ``close_notify`` reads as ``b""``), and files go out in ``FILE_CHUNK_SIZE`` chunks
(``os.sendfile`` cannot encrypt). TLS cannot half-close, so ``send_eof`` is False and a
lingering close ends with the ``close_notify``.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Final

import trio

from .tls import ServerTLS, tls_extension
from .transport import READ_SIZE, StreamTransport

__all__ = ["CLOSE_NOTIFY_TIMEOUT", "PrefixedStream", "TLSTransport"]

#: Seconds the close_notify alert may take to go out before the socket is closed anyway.
CLOSE_NOTIFY_TIMEOUT: Final = 1.0

#: The answer to plain HTTP on the TLS port (the request was read by OpenSSL, as a record).
_PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 61\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"400 Bad Request: this port speaks HTTPS; use an https:// URL\n"
)


class PrefixedStream(trio.abc.Stream):
    """``stream``, whose first bytes read are :attr:`prefix` (the bytes that came after a
    PROXY protocol header, already read from the socket); everything else is passed on.

    Attributes:
        stream: the wrapped stream (the accepted TCP stream).
        prefix: bytes to return from the next ``receive_some`` before reading ``stream``.
    """

    __slots__ = ("prefix", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.prefix = b""

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.prefix:
            await trio.lowlevel.checkpoint()
            size = len(self.prefix) if max_bytes is None else max_bytes
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


class TLSTransport(StreamTransport):
    """A :class:`~trio_asgi._net.transport.StreamTransport` over ``trio.SSLStream``.

    Args:
        raw: the accepted TCP stream.
        server_tls: the server context (``ReloadableContext.current`` when the connection
            was accepted) and what the TLS extension needs of it.
        prefixable: the PROXY protocol is on: keep a :class:`PrefixedStream` under the TLS
            layer for :meth:`unread`.

    Attributes:
        raw: the TCP stream under the TLS layer.
        extension: the ASGI TLS extension dict once :meth:`handshake` succeeded, else None.
    """

    __slots__ = ("_prefixed", "_server_tls", "extension", "raw")

    def __init__(self, raw: trio.abc.Stream, server_tls: ServerTLS, *, prefixable: bool) -> None:
        self.raw = raw
        self._prefixed = PrefixedStream(raw) if prefixable else None
        self._server_tls = server_tls
        self.extension: dict[str, object] | None = None
        super().__init__(
            trio.SSLStream(self._prefixed or raw, server_tls.context, server_side=True)
        )

    async def receive_plain(self) -> bytes:
        """Bytes of the raw socket, before the handshake (a PROXY protocol header); ``b""``
        at EOF, a reset or a close."""
        try:
            return bytes(await self.raw.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    def unread(self, data: bytes) -> None:
        """Have the TLS layer read ``data`` first: what came after the PROXY header.

        Raises:
            RuntimeError: the transport was made with ``prefixable=False``.
        """
        if self._prefixed is None:
            raise RuntimeError("unread() needs a TLSTransport made with prefixable=True")
        self._prefixed.prefix = data + self._prefixed.prefix

    async def handshake(self) -> str | None:
        """Run the TLS handshake; None when it completed (:attr:`extension` is then set),
        else why it failed, one line for the DEBUG log. Cancellation (the deadline, graceful
        shutdown) propagates; the caller's scope bounds it."""
        stream = self.stream
        assert isinstance(stream, trio.SSLStream)  # made in __init__
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            self.broken = True
            cause = exc.__cause__
            reason = cause.reason if isinstance(cause, ssl.SSLError) else None
            if reason == "HTTP_REQUEST":
                await self._answer_plain_http()
                return "plain HTTP on the TLS port (answered 400)"
            if reason is None or reason == "UNEXPECTED_EOF_WHILE_READING":
                return "TLS handshake failed: the client closed the connection"
            return f"TLS handshake failed: {reason}"
        except trio.ClosedResourceError:
            self.broken = True
            return "TLS handshake failed: the connection was closed"
        self.extension = tls_extension(stream, self._server_tls)
        return None

    async def _answer_plain_http(self) -> None:
        """Tell a client that sent plain HTTP to use https://, in the clear (bounded by the
        caller's scope, like the handshake)."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.raw.send_all(_PLAIN_HTTP_ANSWER)  # unless the client is gone

    async def _close_stream(self) -> None:
        if self.extension is None:
            # No handshake (SSLStream.aclose would try to run one first): nothing to say in
            # TLS. (A stream broken later, say by a cancelled write, SSLStream closes as is.)
            await trio.aclose_forcefully(self.raw)
            return
        with trio.move_on_after(CLOSE_NOTIFY_TIMEOUT):
            await self.stream.aclose()  # close_notify, then the socket; forcefully if cut
        await trio.aclose_forcefully(self.raw)  # a no-op if it is closed already
