"""TLS under one connection: a non-blocking :class:`ssl.SSLSocket` as a
:class:`~trio_asgi._net.transport.Transport`.

The connection seam (``_connection.py``) gives a TCP stream accepted on a TLS listener a
:class:`TLSTransport` instead of a plain one; the protocol above reads and writes it like
any other transport and never learns it is encrypted. OpenSSL reads and writes the socket
itself (``SSLSocket.recv``/``send`` on the descriptor, non-blocking); the transport waits on
the descriptor with Trio only when OpenSSL says it must (``SSLWantReadError``,
``SSLWantWriteError``). That is the plain ``SocketTransport``'s shape (its subclass: the
same write fast path, the reader waiting in Trio's frame), and it is why TLS costs here
about what it costs in OpenSSL: ``trio.SSLStream``, with its retry loop, locks and memory
BIOs in Python, cost 0.71x uvicorn's requests per second (docs/performance.md, TLS).

The steps this module adds, in the order the connection task takes them (RFC 8446 for
TLS 1.3, RFC 5246 for 1.2):

1. With ``Config.proxy_protocol``, the PROXY header comes *before* TLS, in the clear
   (HAProxy sends it, then the ClientHello): :meth:`TLSTransport.read_plain_prefix` reads
   exactly the header's bytes from the socket (peeking first), so the ClientHello stays
   in the socket for OpenSSL.
2. :meth:`TLSTransport.handshake`, which the connection task runs in its prelude scope (so
   ``tls_handshake_timeout`` and graceful shutdown end it): the socket is taken from
   Trio's ``SocketStream`` (``detach``) and wrapped. A failed handshake is returned as one
   line for the DEBUG log, never raised; plain HTTP sent to the TLS port is answered with a
   400 in the clear that says to use ``https://``, as nginx does.
3. :attr:`TLSTransport.extension`: the ASGI TLS extension (``_net/tls.py``), built once the
   handshake is done, for every scope of the connection.
4. Closing: a connection whose handshake completed sends its ``close_notify`` alert (RFC
   8446 section 6.1) if the socket takes it at once, without waiting for the peer's (a
   peer that reads nothing cannot hold the close up); then the socket is closed.

What the plain path guarantees holds here too: writes are serialised and wait for the
socket (backpressure); reading never raises for the peer's doing (a reset, an EOF with or
without ``close_notify`` read as ``b""``); a write cancelled part-way breaks the
transport; files go out in ``FILE_CHUNK_SIZE`` chunks (``os.sendfile`` cannot encrypt).
TLS cannot half-close here, so ``send_eof`` is False and a closing connection ends with
the ``close_notify``. Renegotiation is off (``OP_NO_RENEGOTIATION``, ``_net/tls.py``), so
a TLS 1.2 write never has to wait to read; a TLS 1.3 KeyUpdate answered while reading may
have to wait to write, and the reader then waits for the socket to drain.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from .._errors import ClientDisconnected
from .tls import ServerTLS, tls_extension
from .transport import READ_SIZE, SocketTransport

__all__ = ["PEEK_SIZE", "TLSTransport"]

#: Bytes looked at, at most, when a cleartext prefix (a PROXY header) is read before TLS.
PEEK_SIZE: Final = 65536 + 16  # the largest PROXY v2 header: 16 bytes and 64 KiB of body

#: The answer to plain HTTP on the TLS port (the request was read by OpenSSL, as a record).
_PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 61\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"400 Bad Request: this port speaks HTTPS; use an https:// URL\n"
)
_GONE: Final = "the client closed the connection"


class TLSTransport(SocketTransport):
    """A :class:`~trio_asgi._net.transport.SocketTransport` whose bytes go through TLS.

    Args:
        raw: the accepted TCP stream (a ``trio.SocketStream``): its socket is taken over at
            once (``detach``); ``stream.socket`` keeps only its family for the connection.
        server_tls: the server context (``ReloadableContext.current`` when the connection
            was accepted) and what the TLS extension needs of it.

    Attributes:
        extension: the ASGI TLS extension dict once :meth:`handshake` succeeded, else None.
    """

    __slots__ = ("_server_tls", "_sock", "_ssl", "_want_write", "extension")

    def __init__(self, raw: trio.SocketStream, server_tls: ServerTLS) -> None:
        super().__init__(raw)
        trio_socket = raw.socket
        # The stdlib socket OpenSSL will drive, non-blocking, on the same descriptor.
        self._sock = socket.socket(
            trio_socket.family, trio_socket.type, trio_socket.proto, fileno=trio_socket.detach()
        )
        self._sock.setblocking(False)
        self._server_tls = server_tls
        self._ssl: ssl.SSLSocket | None = None  # from the handshake on
        self._want_write = False  # a read needs the socket writable first (a KeyUpdate)
        self.extension: dict[str, object] | None = None

    # -- before the protocol ------------------------------------------------------------------

    async def read_plain_prefix(self, parse: Callable[[bytes], int | None]) -> bytes:
        """Read a cleartext prefix of the connection (a PROXY protocol header), exactly:
        what follows it stays in the socket for the TLS handshake.

        ``parse(data)`` is given everything of the prefix read so far plus what is waiting
        in the socket, and returns the prefix's length once it is complete, None while more
        is needed (and raises if it is malformed). Returns the prefix, or ``b""`` if the
        connection ended first.
        """
        sock = self._sock
        consumed = b""
        while True:
            try:
                await trio.lowlevel.wait_readable(self._fd)
                peeked = sock.recv(PEEK_SIZE - len(consumed), socket.MSG_PEEK)
            except (trio.ClosedResourceError, OSError):
                return b""
            if not peeked:
                return b""  # EOF
            data = consumed + peeked
            length = parse(data)
            try:
                if length is not None:
                    sock.recv(length - len(consumed))  # bytes already waiting: never blocks
                    return data[:length]
                # All of it belongs to the prefix: take it, so the socket stops being
                # readable until more arrives.
                sock.recv(len(peeked))
            except OSError:  # reset by the peer
                return b""
            consumed = data
            if len(consumed) >= PEEK_SIZE:
                return b""

    async def handshake(self) -> str | None:
        """Run the TLS handshake; None when it completed (:attr:`extension` is then set),
        else why it failed, one line for the DEBUG log. Cancellation (the deadline,
        graceful shutdown) propagates; the caller's scope bounds it."""
        tls = self._ssl = self._server_tls.context.wrap_socket(
            self._sock, server_side=True, do_handshake_on_connect=False
        )
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                wait = trio.lowlevel.wait_readable
            except ssl.SSLWantWriteError:
                wait = trio.lowlevel.wait_writable
            except ssl.SSLError as exc:
                self.broken = True
                plain_http = exc.reason == "HTTP_REQUEST"
                self._refuse_handshake(_PLAIN_HTTP_ANSWER if plain_http else b"")
                if plain_http:
                    return "plain HTTP on the TLS port (answered 400)"
                if exc.reason in (None, "UNEXPECTED_EOF_WHILE_READING"):
                    return f"TLS handshake failed: {_GONE}"
                return f"TLS handshake failed: {exc.reason}"
            except OSError:
                self.broken = True
                return f"TLS handshake failed: {_GONE}"
            try:
                await wait(self._fd)
            except trio.ClosedResourceError:
                self.broken = True
                return "TLS handshake failed: the connection was closed"
        self.extension = tls_extension(tls, self._server_tls)
        return None

    def _refuse_handshake(self, answer: bytes) -> None:
        """After a failed handshake: ``answer`` in the clear (the 400 for plain HTTP, or
        nothing), our FIN, and what the client already sent read and dropped, so that
        closing does not reset the connection (and lose OpenSSL's alert or the 400) in the
        common case. Never waits."""
        with contextlib.suppress(OSError):
            if answer:
                os.write(self._fd, answer)  # small: the send buffer takes it
            socket.socket.shutdown(self._ssl or self._sock, socket.SHUT_WR)
            while os.read(self._fd, READ_SIZE):
                pass  # until EOF, or BlockingIOError (an OSError) once nothing waits

    # -- reading ------------------------------------------------------------------------------

    async def receive_some(self) -> bytes:
        while True:
            data = self.read_now()  # OpenSSL may hold decrypted bytes: look first
            if data is not None:
                return data
            wait = self.readable()
            if wait is None:
                continue
            try:
                await wait
            except trio.ClosedResourceError:
                return b""

    def readable(self) -> Awaitable[None] | None:
        tls = self._ssl
        if tls is not None and tls.pending():
            return None  # decrypted bytes wait in OpenSSL: read them, do not poll
        if self._want_write:
            return trio.lowlevel.wait_writable(self._fd)  # noqa: ASYNC105 - awaited by the reader
        return trio.lowlevel.wait_readable(self._fd)  # noqa: ASYNC105 - awaited by the reader

    def read_now(self) -> bytes | None:
        tls = self._ssl
        if self.closed or tls is None:
            return b""
        self._want_write = False
        try:
            return tls.recv(READ_SIZE)
        except ssl.SSLWantReadError:
            return None
        except ssl.SSLWantWriteError:
            self._want_write = True
            return None
        except (ssl.SSLError, OSError):
            return b""  # close_notify, a reset, a bad record: the end of the input

    # -- writing ------------------------------------------------------------------------------

    def _write_now(self, data: bytes | memoryview) -> int:
        tls = self._ssl
        if tls is None or self.closed:
            # Never past a close: an unwrapped SSLSocket would send the bytes in the clear.
            raise ClientDisconnected(_GONE)
        try:
            return tls.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            # OpenSSL keeps what it took: the retry (_send_all) passes the same bytes.
            return 0
        except (ssl.SSLError, OSError) as exc:
            self._failed()
            raise ClientDisconnected(_GONE) from exc

    async def _send_all(self, data: bytes | memoryview) -> None:
        """Write all of ``data``, waiting for the socket whenever OpenSSL must; with the
        write lock held. Cancelled part-way, the transport is broken."""
        view = memoryview(data)
        written = False
        try:
            while view:
                if self.closed:
                    raise ClientDisconnected(_GONE)
                taken = self._write_now(view)
                if taken:
                    view = view[taken:]
                    continue
                try:
                    await trio.lowlevel.wait_writable(self._fd)  # backpressure
                except trio.ClosedResourceError as exc:
                    self._failed()
                    raise ClientDisconnected(_GONE) from exc
            written = True
        finally:
            self.broken = self.broken or not written

    async def sendfile(self, fd: int, offset: int | None, count: int) -> int:
        if self.broken:
            raise ClientDisconnected(_GONE)
        async with self._lock():
            return await self._copy_file(fd, offset, count)  # read, encrypt, write

    def half_close_now(self) -> bool | None:
        return None  # TLS cannot half-close here: see send_eof

    async def send_eof(self) -> bool:
        await trio.lowlevel.checkpoint()
        return False

    # -- closing ------------------------------------------------------------------------------

    async def _close_stream(self) -> None:
        trio.lowlevel.notify_closing(self._fd)  # wake a task waiting on it
        tls = self._ssl
        if tls is None:  # no handshake began
            self._sock.close()
            return
        if self.extension is not None:
            # close_notify if the socket takes it now; the peer's is not waited for.
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                tls.unwrap()
        tls.close()
