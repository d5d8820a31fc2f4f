"""The file side of the ``http.response.pathsend`` and ``http.response.zerocopysend``
extensions (ASGI extensions spec, "Path Send" and "Zero Copy Send"): which bytes of which
descriptor a message asks for. The messages are checked in ``messages.py``; the bytes are
sent by the transport's ``sendfile`` (``_net/transport.py``); the framing and the state of
the response are the request cycle's (``exchange.py``).

- :func:`send_file_message` checks either message and hands the request cycle's body
  sender a :class:`FileRange`; for a pathsend it opens the file and closes it after.
- :func:`open_path` opens a ``pathsend`` path in a worker thread (``open(2)`` may wait for a
  slow disk or a network file system, which must not stall Trio's thread) and returns the
  descriptor and its size; the caller closes it.
- :func:`file_range` turns a ``zerocopysend`` message's optional ``offset`` and ``count``
  into what to send: ``fstat(2)`` and ``lseek(2)`` on an open descriptor do not wait for the
  disk, so they run on Trio's thread. The app's descriptor is never closed here: the spec
  leaves that to the app.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import trio

from .._errors import InvalidMessage, UnexpectedMessage
from .messages import ZeroCopySend, check_pathsend, check_zerocopysend

__all__ = [
    "FileRange",
    "SendBody",
    "file_range",
    "open_path",
    "send_file_message",
    "with_file_length",
]

_NO_BODY_STATUSES: Final = frozenset({204, 304})  # no Content-Length is added to these


@dataclass(frozen=True, slots=True)
class FileRange:
    """Bytes of a file to send as body: the arguments of ``Transport.sendfile``.

    Attributes:
        fd: an open file descriptor.
        offset: the byte offset to start at; None: the descriptor's current position.
        count: the number of bytes.
    """

    fd: int
    offset: int | None
    count: int


#: The request cycle's body sender: ``(body, more_body, file)``; with ``file`` the body is
#: that range (``body`` is then ``b""``).
SendBody = Callable[[bytes, bool, "FileRange | None"], Awaitable[None]]


async def send_file_message(
    kind: str, message: Mapping[str, Any], head_pending: bool, send_body: SendBody
) -> None:
    """Send an ``http.response.zerocopysend`` or ``http.response.pathsend`` message (its
    ``type`` is ``kind``) through ``send_body``, once the response has started and while
    it is not complete. ``head_pending``: no body message has been sent yet.

    Raises:
        InvalidMessage: a key is wrong (see ``messages.py``), a relative path, a pathsend
            file that cannot be opened (see :func:`open_path`).
        UnexpectedMessage: a pathsend after a body message (the spec: it "cannot be mixed
            with ``http.response.body``").
        ClientDisconnected: as ``send()``.
    """
    if kind == "http.response.zerocopysend":
        checked = check_zerocopysend(message)
        offset, count = file_range(checked)
        await send_body(b"", checked.more_body, FileRange(checked.fd, offset, count))
        return
    path = check_pathsend(message)
    if not head_pending:
        raise UnexpectedMessage(f"{kind!r} cannot follow 'http.response.body'.")
    fd, size = await open_path(path)
    try:
        await send_body(b"", False, FileRange(fd, 0, size))
    finally:
        os.close(fd)


def with_file_length(
    headers: list[tuple[bytes, bytes]], status: int, count: int, more_body: bool
) -> list[tuple[bytes, bytes]]:
    """The held head's headers for a response whose body is ``count`` bytes of a file:
    with ``Content-Length: count`` added when the file is the whole body (not
    ``more_body``), the app gave none and the status may have one; else ``headers``
    itself. The server chooses the framing (ASGI HTTP spec, "Response Start"), and a length
    known in advance frames better than chunks; a HEAD response gets the length a GET
    would (RFC 9110 section 9.3.2).
    """
    if more_body or status in _NO_BODY_STATUSES:
        return headers
    if any(name.lower() == b"content-length" for name, _ in headers):
        return headers
    return [*headers, (b"content-length", b"%d" % count)]


def _open_regular(path: str) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise IsADirectoryError(f"{path!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, status.st_size


async def open_path(path: str) -> tuple[int, int]:
    """Open the regular file at ``path`` for reading, in a worker thread.

    Returns:
        ``(fd, size)``: an open descriptor the caller must close, and the file's size in
        bytes when it was opened.

    Raises:
        InvalidMessage: the file cannot be opened (missing, unreadable, not a regular
            file); the ``OSError`` is its ``__cause__``. It is the app's mistake, and
            deliberately not an ``OSError`` itself, which an app would take for
            :class:`~trio_asgi.ClientDisconnected` (ASGI HTTP spec 2.4).
    """
    try:
        return await trio.to_thread.run_sync(_open_regular, path)
    except OSError as exc:
        raise InvalidMessage(
            f"'http.response.pathsend' cannot send {path!r}: {exc.strerror or exc}"
        ) from exc


def file_range(message: ZeroCopySend) -> tuple[int | None, int]:
    """``(offset, count)`` for a checked ``zerocopysend`` message: its own ``offset``
    (None: the descriptor's current position) and ``count``, or, without ``count``, the
    bytes from there to the end of the file (ASGI extensions spec: "the file will be read
    until its end").

    Raises:
        InvalidMessage: ``count`` is omitted for a descriptor that is not a regular file
            (its end is unknown), or ``fstat``/``lseek`` fail on the descriptor.
    """
    if message.count is not None:
        return message.offset, message.count
    try:
        status = os.fstat(message.fd)
        if not stat.S_ISREG(status.st_mode):
            raise InvalidMessage(
                "'http.response.zerocopysend' needs 'count' for a file that is not a "
                f"regular file (descriptor {message.fd})"
            )
        start = message.offset
        if start is None:
            start = os.lseek(message.fd, 0, os.SEEK_CUR)
    except OSError as exc:
        raise InvalidMessage(
            f"'http.response.zerocopysend' 'file' (descriptor {message.fd}) is not usable: {exc}"
        ) from exc
    return message.offset, max(0, status.st_size - start)
