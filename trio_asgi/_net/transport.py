"""The byte transport under one connection: the only ``os.read``/``os.write`` in trio-asgi
(with ``tls_transport.py``, whose ``TLSTransport`` subclasses :class:`SocketTransport`).

A connection driver (HTTP/1.1 today) reads and writes through a :class:`Transport` and
never looks at what is underneath. :func:`open_transport` picks one of two (a TLS listener's
connections get ``_net/tls_transport.TLSTransport``, from the connection seam):

- :class:`SocketTransport` for a plain TCP :class:`trio.SocketStream` on POSIX: the
  descriptor is read with ``os.read`` after ``trio.lowlevel.wait_readable`` and written with
  ``os.write``, skipping ``SocketStream``'s per-call machinery on the hot path
  (docs/performance.md measures why); the write lock is taken only when a write has to
  wait, and the FIN is one synchronous ``shutdown(SHUT_WR)``.
- :class:`StreamTransport` for any other :class:`trio.abc.Stream` (Unix sockets, memory
  streams in tests): ``receive_some``/``send_all`` under a write lock.

Both keep the same rules:

- Reading never raises for the peer's doing: EOF, a reset and a transport closed under the
  reader all read as ``b""``.
- ``write`` is a checkpoint (Trio's rule: if it is cancelled, nothing was written), raises
  :class:`~trio_asgi.ClientDisconnected` once writing can no longer succeed, and serialises
  writers, so bytes of two responses never interleave. A write cancelled half-way leaves
  an unknown part out: the transport is then ``broken`` and writes nothing more.
- :meth:`~SocketTransport.close` is synchronous for a socket and never raises.
- ``sendfile`` sends bytes of a file descriptor under the write lock, with the same
  backpressure and the same :class:`~trio_asgi.ClientDisconnected`: ``os.sendfile`` on a
  socket (the bytes never enter Python), else ``os.pread``/``os.read`` of at most
  ``FILE_CHUNK_SIZE`` and ``send_all``, one chunk in memory at a time (also the fallback
  when the kernel refuses ``sendfile`` for that descriptor). The read runs on Trio's thread:
  one bounded read of a regular file (the page cache, or one disk read) costs less than
  handing each chunk to a worker thread and back.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable
from typing import Final, Protocol

import trio

from .._errors import ClientDisconnected

__all__ = [
    "FILE_CHUNK_SIZE",
    "READ_SIZE",
    "SocketTransport",
    "StreamTransport",
    "Transport",
    "open_transport",
]

READ_SIZE: Final = 64 * 1024  # bytes asked of the socket per read (64 KiB)
FILE_CHUNK_SIZE: Final = 64 * 1024  # bytes of a file read and written at a time (64 KiB)
SENDFILE_SLICE: Final = 1024 * 1024  # bytes per os.sendfile call (1 MiB): then a checkpoint
#: os.sendfile cannot serve this descriptor pair: read and write instead.
_NO_SENDFILE: Final = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ESPIPE, errno.EOVERFLOW}
)
#: os.sendfile failed on the socket's side: the peer is gone.
_PEER_GONE: Final = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN})


class Transport(Protocol):
    """What a connection driver reads and writes through (see the module docstring).

    Attributes:
        stream: the underlying stream, for what only it knows (its socket's addresses).
        broken: writes can no longer succeed (a write failed, or the transport is closed).
        closed: :meth:`aclose` has been called; reads return ``b""``.
    """

    stream: trio.abc.Stream
    broken: bool
    closed: bool

    @property
    def can_poll(self) -> bool:
        """Whether :meth:`read_now` can read without blocking (only a plain socket can)."""

    async def receive_some(self) -> bytes:
        """The next bytes, at most ``READ_SIZE``; ``b""`` at EOF, a reset or a close."""

    def readable(self) -> Awaitable[None] | None:
        """For a reader that waits in trio's own frame (no coroutine of the transport's on
        the stack while idle): an awaitable that returns when :meth:`read_now` has bytes
        (or EOF) and raises ``trio.ClosedResourceError`` if the transport is closed under
        it; None if this transport cannot be waited on that way (use :meth:`receive_some`).
        """

    def read_now(self) -> bytes | None:
        """What is already readable, without blocking: ``b""`` at EOF, None if nothing."""

    async def write(self, data: bytes, *, final: bool = False) -> None:
        """Hand ``data`` on; returns once it is in the kernel's send buffer. With ``final``
        (the write that completes a response) it does not yield once it has written.

        Raises:
            ClientDisconnected: the transport is broken or the write failed.
        """

    async def sendfile(self, fd: int, offset: int | None, count: int) -> int:
        """Send ``count`` bytes of file descriptor ``fd`` from ``offset`` (None: from its
        current position, which advances), under the write lock (see the module docstring);
        returns the bytes sent, fewer than ``count`` only if the file ended first.

        Raises:
            ClientDisconnected: the transport is broken or a write failed.
            OSError: reading ``fd`` failed (the transport is then broken if part was sent).
        """

    def half_close_now(self) -> bool | None:
        """Send the FIN synchronously if that can be done now: True if sent, False if the
        peer is gone already, None if it cannot be done without waiting (use
        :meth:`send_eof`)."""

    async def send_eof(self) -> bool:
        """Send the FIN after any write in progress: True if sent, False if the peer is gone
        or the stream cannot half-close (TLS)."""

    async def aclose(self) -> None:
        """Close now (forcefully); idempotent, never raises."""


class StreamTransport:
    """A :class:`Transport` over any :class:`trio.abc.Stream`.

    Args:
        stream: the stream to read and write; its ``send_eof`` is used if it is a
            :class:`trio.abc.HalfCloseableStream`.
    """

    __slots__ = ("_write_lock", "broken", "closed", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.broken = False
        self.closed = False
        # Held by a write that awaits, so no other write interleaves; made on first need.
        self._write_lock: trio.StrictFIFOLock | None = None

    @property
    def can_poll(self) -> bool:
        return False

    async def receive_some(self) -> bytes:
        try:
            return bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""  # reset or closed under us: the same as EOF for the reader

    def read_now(self) -> bytes | None:
        return None

    def readable(self) -> Awaitable[None] | None:
        return None

    async def write(self, data: bytes, *, final: bool = False) -> None:
        if self.broken:
            raise ClientDisconnected("the client closed the connection")
        async with self._lock():
            await self._send_all(data)

    def half_close_now(self) -> bool | None:
        return None

    async def sendfile(self, fd: int, offset: int | None, count: int) -> int:
        if self.broken:
            raise ClientDisconnected("the client closed the connection")
        async with self._lock():
            return await self._copy_file(fd, offset, count)

    async def _copy_file(self, fd: int, offset: int | None, count: int) -> int:
        """Read ``fd`` and write it in chunks of at most ``FILE_CHUNK_SIZE``, with the write
        lock held; a failed read after part of the file went out breaks the transport."""
        sent = 0
        while sent < count:
            size = min(count - sent, FILE_CHUNK_SIZE)
            try:
                chunk = os.read(fd, size) if offset is None else os.pread(fd, size, offset + sent)
            except OSError:
                self.broken = self.broken or sent > 0
                raise
            if not chunk:
                break  # the file ended first
            await self._send_all(chunk)
            sent += len(chunk)
        return sent

    async def send_eof(self) -> bool:
        stream = self.stream
        if self.closed or not isinstance(stream, trio.abc.HalfCloseableStream):
            return False
        try:
            async with self._lock():
                await stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.broken = True
        await self._close_stream()

    async def _close_stream(self) -> None:
        await trio.aclose_forcefully(self.stream)

    def _lock(self) -> trio.StrictFIFOLock:
        if self._write_lock is None:
            self._write_lock = trio.StrictFIFOLock()
        return self._write_lock

    def _write_locked(self) -> bool:
        return self._write_lock is not None and self._write_lock.locked()

    async def _send_all(self, data: bytes | memoryview) -> None:
        """``stream.send_all(data)``, with the write lock held; marks the transport broken
        if the write fails or is cancelled part-way."""
        written = False
        try:
            await self.stream.send_all(data)
            written = True
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._failed()
            raise ClientDisconnected("the client closed the connection") from exc
        finally:
            # Cancelled part-way, an unknown part of ``data`` is out: whatever was
            # written next would corrupt the stream, so nothing more is.
            self.broken = self.broken or not written

    def _failed(self) -> None:
        self.broken = True


class SocketTransport(StreamTransport):
    """A :class:`Transport` over a plain TCP :class:`trio.SocketStream` on POSIX, through its
    file descriptor (see the module docstring). A write that cannot finish at once, and
    the FIN while a write waits, fall back to the stream's own methods under the lock.

    Args:
        stream: a :class:`trio.SocketStream` (exactly: not a subclass) of a POSIX system.
    """

    __slots__ = ("_fd",)

    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self._fd = stream.socket.fileno()

    @property
    def can_poll(self) -> bool:
        return True

    async def receive_some(self) -> bytes:
        # Wait first, then read: between requests the next one has almost never arrived
        # yet, and a read that fails with EAGAIN costs a syscall and an exception.
        while True:
            try:
                await trio.lowlevel.wait_readable(self._fd)
            except trio.ClosedResourceError:
                return b""
            data = self.read_now()
            if data is not None:
                return data

    def readable(self) -> Awaitable[None] | None:
        return trio.lowlevel.wait_readable(self._fd)  # noqa: ASYNC105 - the reader awaits it

    def read_now(self) -> bytes | None:
        if self.closed:  # closed while the reader was being woken: the fd is stale
            return b""
        try:
            return os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            return b""  # reset by the peer

    async def write(self, data: bytes, *, final: bool = False) -> None:
        if self.broken:
            raise ClientDisconnected("the client closed the connection")
        if self._write_locked():
            async with self._lock():
                await self._send_all(data)
            return
        # The fast path: one write(2) that usually takes all of ``data``. Cancellation is
        # checked first, so a cancelled send() writes nothing (Trio's checkpoint rule).
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.broken:  # closed while the cancellation check ran
            raise ClientDisconnected("the client closed the connection")
        # Synchronous from here to the write: no other task can write in between, so no
        # lock is needed unless this write has to wait.
        written = self._write_now(data)
        if written < len(data):
            # The send buffer is full (backpressure): the rest waits for it to drain,
            # under the lock so no other write can interleave.
            lock = self._lock()
            lock.acquire_nowait()  # free: checked above, and nothing awaited since
            try:
                await self._send_all(memoryview(data)[written:])
            finally:
                lock.release()
            return
        if not final:
            # A checkpoint, so an app streaming to a fast client still lets other tasks
            # run. The write that completes a response skips it: the app task is about
            # to end, which is a scheduling point anyway.
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _write_now(self, data: bytes | memoryview) -> int:
        """One write(2) of ``data``, without waiting: the bytes it took (0 if the send
        buffer is full).

        Raises:
            ClientDisconnected: the write failed (the peer is gone); the transport is broken.
        """
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._failed()
            raise ClientDisconnected("the client closed the connection") from exc

    async def sendfile(self, fd: int, offset: int | None, count: int) -> int:
        if self.broken:
            raise ClientDisconnected("the client closed the connection")
        async with self._lock():
            try:
                sent = await self._sendfile(fd, offset, count)
            except trio.Cancelled:
                self.broken = True  # cancelled part-way: an unknown part is out
                raise
            if sent < 0:  # os.sendfile refused this descriptor before sending anything
                return await self._copy_file(fd, offset, count)
            return sent

    async def _sendfile(self, fd: int, offset: int | None, count: int) -> int:
        """``os.sendfile`` until ``count`` bytes are out or the file ends, waiting for the
        socket to drain when its buffer is full; -1 if the kernel cannot ``sendfile`` this
        descriptor (nothing was sent then)."""
        sent = 0
        while sent < count:
            size = min(count - sent, SENDFILE_SLICE)
            if self.closed:  # closed while this waited: the socket's fd is stale
                raise ClientDisconnected("the client closed the connection")
            try:
                n = os.sendfile(self._fd, fd, None if offset is None else offset + sent, size)
            except BlockingIOError:
                try:
                    await trio.lowlevel.wait_writable(self._fd)  # backpressure
                except trio.ClosedResourceError as exc:
                    self._failed()
                    raise ClientDisconnected("the client closed the connection") from exc
                continue
            except OSError as exc:
                if exc.errno in _PEER_GONE:
                    self._failed()
                    raise ClientDisconnected("the client closed the connection") from exc
                if exc.errno in _NO_SENDFILE and sent == 0:
                    return -1
                self.broken = self.broken or sent > 0  # the file's fault (EBADF, EIO)
                raise
            if n == 0:
                break  # the file ended first
            sent += n
            if sent < count:
                await trio.lowlevel.checkpoint()  # let other tasks run between slices
        return sent

    def half_close_now(self) -> bool | None:
        if self.closed or self._write_locked():
            return None  # the FIN must go after the waiting write
        try:
            self.stream.socket.shutdown(trio.socket.SHUT_WR)  # type: ignore[attr-defined]
        except OSError:
            return False  # the peer is gone already
        return True

    async def _close_stream(self) -> None:
        self.stream.socket.close()  # type: ignore[attr-defined]  # synchronous: no checkpoint


def open_transport(stream: trio.abc.Stream) -> Transport:
    """The transport for ``stream``: a :class:`SocketTransport` for a plain TCP
    :class:`trio.SocketStream` on POSIX (not on Windows, where sockets are not file
    descriptors), a :class:`StreamTransport` for anything else."""
    if os.name == "posix" and type(stream) is trio.SocketStream:
        return SocketTransport(stream)
    return StreamTransport(stream)
