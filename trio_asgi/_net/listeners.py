"""Listening sockets: binding them, the accept loop, and the address each one reports.

:func:`bind` opens what the binds (``_net.binds``) name: TCP on every address a host resolves
to, Unix domain sockets (a stale file from a dead server replaced, a live server's refused),
inherited descriptors (``fd://N`` and systemd's, checked to be listening stream sockets).
:func:`unix_socket_files` records the socket files it created, and
:func:`unlink_unix_sockets` removes them at shutdown, if they are still ours.

:func:`accept_loop` runs as the "trio-asgi accept loop" task, one per listener, inside
``serve()``'s accept cancel scope. It hands every accepted stream to a synchronous callback
(``serve()`` decides there whether the connection is served or refused), so accepting never
waits for a connection.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import trio

from .._errors import ConfigError, TrioASGIError
from .._logging import error_logger
from .._types import ListenAddress, TCPAddress, UnixAddress
from .binds import Bind, FDBind, TCPBind, UnixBind, describe_bind

__all__ = [
    "ACCEPT_BATCH",
    "ListenError",
    "UnixSocketFile",
    "accept_loop",
    "bind",
    "listener_address",
    "unix_address",
    "unix_socket_files",
    "unlink_unix_sockets",
]

#: Connections accepted per pass of the scheduler at most (see accept_loop).
ACCEPT_BATCH: Final = 64
#: accept(2) errors that mean the system is out of a resource, not that the listener broke
#: (the list trio.serve_listeners uses).
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_RETRY_DELAY: Final = 0.1  # seconds
#: The permission bits a Unix socket file may be given (``--uds-permissions``).
_MAX_PERMISSIONS: Final = 0o777
_FAMILY_NAMES: Final = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6", socket.AF_UNIX: "Unix"}
_TYPE_NAMES: Final = {
    socket.SOCK_DGRAM: "datagram",
    socket.SOCK_RAW: "raw",
    socket.SOCK_SEQPACKET: "seqpacket",
}
_FILE_KINDS: Final = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


class ListenError(TrioASGIError, OSError):
    """A bind could not be listened on, for a reason the message names: another server
    listens on the Unix socket path, the path is not a socket, a descriptor is not a
    listening stream socket (``"fd 5 is a UDP socket"``). An :class:`OSError` (``errno``
    set where one applies), as every other bind failure is.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


@dataclass(frozen=True, slots=True)
class UnixSocketFile:
    """A Unix socket file :func:`bind` created: its path and identity (``st_dev``,
    ``st_ino``), so that shutdown removes the file only while it is still this one."""

    path: str
    device: int
    inode: int


async def bind(
    binds: Sequence[Bind], backlog: int, *, uds_permissions: int | None = None
) -> list[trio.SocketListener]:
    """Listening sockets for ``binds``, in their order: several for a TCP host that resolves
    to several addresses, one for each Unix or descriptor bind.

    - TCP: :func:`trio.open_tcp_listeners` (IPv6 sockets are IPv6-only; port 0 picks one).
    - Unix: a socket file left by a dead server (connecting is refused) is removed first;
      one a live server accepts on is refused, as is a path that exists and is no socket.
      ``uds_permissions`` (e.g. ``0o660``) is applied before the socket listens, so no
      client connects under the umask's mode.
    - Descriptors: adopted as they are (family detected), made non-inheritable; one that is
      not a listening stream socket is refused and left open, untouched.

    Args:
        binds: what to listen on (``_net.binds``), each at most once.
        backlog: ``listen(2)``'s backlog for the sockets bound here (not inherited ones).
        uds_permissions: the mode of created Unix socket files; None keeps the umask's.

    Raises:
        ConfigError: a bind is listed twice, or ``uds_permissions`` is not 0 to 0o777.
        ListenError: a Unix path is in use or not a socket; a descriptor is not a listening
            stream socket (or not open).
        OSError: any other failure to bind (``EADDRINUSE``, ``EACCES``, ...).

    Resource handling:
        When any bind fails, every socket already opened is closed and every Unix socket
        file created is removed before the error propagates; nothing leaks.
    """
    if uds_permissions is not None and not 0 <= uds_permissions <= _MAX_PERMISSIONS:
        raise ConfigError(
            f"uds_permissions must be a mode from 0 to 0o777, not {uds_permissions!r}"
        )
    seen: set[object] = set()
    for item in binds:
        key = ("fd", item.fd) if isinstance(item, FDBind) else item
        if key in seen:
            raise ConfigError(f"{describe_bind(item)} is listed twice")
        seen.add(key)
    listeners: list[trio.SocketListener] = []
    created: list[UnixBind] = []
    try:
        for item in binds:
            if isinstance(item, TCPBind):
                listeners += await trio.open_tcp_listeners(
                    item.port, host=item.host, backlog=backlog
                )
            elif isinstance(item, UnixBind):
                listeners.append(await _bind_unix(item, backlog, uds_permissions))
                created.append(item)
            else:
                listeners.append(_adopt_fd(item))
    except BaseException:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        unlink_unix_sockets(unix_socket_files(created))
        raise
    return listeners


def unix_socket_files(binds: Sequence[Bind]) -> list[UnixSocketFile]:
    """The socket files :func:`bind` created for the Unix binds in ``binds`` (call it right
    after ``bind`` returned), to pass to :func:`unlink_unix_sockets` at shutdown. Files of
    inherited descriptors are not among them: systemd or the parent owns those.

    Raises:
        OSError: a file cannot be examined (``lstat``); a vanished one is skipped.
    """
    files = []
    for item in binds:
        if isinstance(item, UnixBind):
            try:
                info = os.lstat(item.path)
            except FileNotFoundError:
                continue
            files.append(UnixSocketFile(item.path, info.st_dev, info.st_ino))
    return files


def unlink_unix_sockets(files: Sequence[UnixSocketFile]) -> None:
    """Remove each socket file that is still the one :func:`bind` created (a socket, same
    device and inode): any other file put at its path since is left alone. A file that
    cannot be removed is logged at WARNING; this never raises."""
    for file in files:
        try:
            info = os.lstat(file.path)
            ours = (info.st_dev, info.st_ino) == (file.device, file.inode)
            if ours and stat.S_ISSOCK(info.st_mode):
                os.unlink(file.path)
        except FileNotFoundError:
            continue  # removed by someone else: the goal is met
        except OSError as exc:
            error_logger.warning("Could not remove the socket file %s: %s", file.path, exc)


async def _bind_unix(item: UnixBind, backlog: int, permissions: int | None) -> trio.SocketListener:
    _clear_stale_socket(item.path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(item.path)
    except BaseException:
        sock.close()
        raise
    try:
        if permissions is not None:
            os.chmod(item.path, permissions)
        sock.listen(backlog)
        return trio.SocketListener(sock)
    except BaseException:
        sock.close()
        os.unlink(item.path)  # ours: bind() just created it
        raise


def _clear_stale_socket(path: str) -> None:
    """Remove ``path`` if it is a socket file nobody listens on (a dead server's).

    Raises:
        ListenError: ``path`` is not a socket, or a server accepts connections on it.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ListenError(
            f"unix:{path} exists and is not a socket ({_file_kind(info.st_mode)}); "
            "remove it or choose another path",
            errno.EEXIST,
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a live server with a full backlog: EAGAIN, never a wait
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            error_logger.info("Removed unix:%s, a stale socket nobody listens on", path)
            return
        except FileNotFoundError:
            return  # removed meanwhile
        except BlockingIOError:
            pass  # a live server whose backlog is full
        except OSError as exc:
            raise ListenError(
                f"cannot tell whether a server listens on unix:{path}: {exc}", exc.errno
            ) from exc
    raise ListenError(
        f"another server listens on unix:{path}; stop it or choose another path",
        errno.EADDRINUSE,
    )


def _adopt_fd(item: FDBind) -> trio.SocketListener:
    """``item.fd`` as a listener, once it is known to be a listening stream socket."""
    fd = item.fd
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise ListenError(f"fd {fd} is not open", errno.EBADF) from None
        raise
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"fd {fd} is not a socket ({_file_kind(mode)})", errno.ENOTSOCK)
    sock = socket.socket(fileno=fd)
    problem = _not_a_listener(sock)
    if problem is not None:
        sock.detach()  # refused: the descriptor stays open, as it was given
        raise ListenError(f"fd {fd} {problem}", errno.EINVAL)
    sock.set_inheritable(False)
    if item.name is None:
        error_logger.debug("Serving the inherited socket fd %d", fd)
    else:
        error_logger.info("Serving systemd's socket fd %d (named %r)", fd, item.name)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def _not_a_listener(sock: socket.socket) -> str | None:
    """What keeps ``sock`` from being served (``"is a UDP socket"``), or None."""
    family = _FAMILY_NAMES.get(sock.family)
    if family is None:
        return f"is a socket of family {sock.family.name}, not IPv4, IPv6 or Unix"
    if sock.type != socket.SOCK_STREAM:
        if sock.type == socket.SOCK_DGRAM and sock.family != socket.AF_UNIX:
            return "is a UDP socket, not a TCP one"
        kind = _TYPE_NAMES.get(sock.type, sock.type.name)
        return f"is a {family} {kind} socket, not a stream (TCP or Unix stream) one"
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        transport = "Unix stream" if sock.family == socket.AF_UNIX else "TCP"
        return f"is a {transport} socket that is not listening (call listen() before passing it)"
    return None


def _file_kind(mode: int) -> str:
    for test, kind in _FILE_KINDS:
        if test(mode):
            return kind
    return "not a socket"


def listener_address(listener: trio.SocketListener) -> ListenAddress:
    """Where ``listener`` is bound, as ``serve()`` reports it to ``task_status``: a
    ``TCPAddress`` for IPv4 and IPv6, a ``UnixAddress`` for a Unix socket (Linux's abstract
    names as ``"@name"``)."""
    name = listener.socket.getsockname()
    if listener.socket.family == socket.AF_UNIX:
        return unix_address(name)
    host, port = name[:2]
    return TCPAddress(str(host), int(port))


def unix_address(name: str | bytes) -> UnixAddress:
    """A Unix socket's ``getsockname()`` as a ``UnixAddress``: the path, or Linux's
    abstract name as ``"@name"``."""
    if isinstance(name, bytes):  # an abstract name: a NUL, then any bytes
        return UnixAddress("@" + os.fsdecode(name[1:]) if name[:1] == b"\0" else os.fsdecode(name))
    return UnixAddress(str(name))


async def accept_loop(
    listener: trio.SocketListener, on_accept: Callable[[trio.SocketStream], None]
) -> None:
    """Accept connections on ``listener`` until cancelled, calling ``on_accept(stream)``
    (synchronous; it owns the stream from then on) for each. Closes ``listener`` at the end.

    The loop of :func:`trio.serve_listeners`, except that closing each stream is left to
    ``on_accept``'s side, sparing a second close per connection, and that connections come
    in batches: after each awaited accept, up to ``ACCEPT_BATCH - 1`` more that are already
    waiting are accepted without a checkpoint (as asyncio accepts a batch per readiness
    event). Trio's ``accept()`` yields after every connection, so under load each new
    connection waited for a whole pass of the scheduler over the busy ones: a storm of 256
    new connections took seconds to be answered. The batch is taken through a second
    descriptor of the listening socket (``dup``), closed with the listener.

    ``EMFILE``, ``ENFILE``, ``ENOMEM`` and ``ENOBUFS`` are logged at ERROR and ``accept()``
    is tried again after 0.1 s.

    Raises:
        OSError: any other error from ``accept()``.
    """
    async with listener:
        batch = socket.socket(fileno=os.dup(listener.socket.fileno()))
        with batch:
            batch.setblocking(False)  # shared with the listener's; never wait on it
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    # Out of file descriptors or memory: wait for connections to close.
                    error_logger.error(
                        "accept returned %s (%s); retrying in %s s",
                        errno.errorcode[exc.errno],
                        os.strerror(exc.errno),
                        _ACCEPT_RETRY_DELAY,
                    )
                    await trio.sleep(_ACCEPT_RETRY_DELAY)
                    continue
                on_accept(stream)
                _accept_waiting(batch, on_accept)


def _accept_waiting(batch: socket.socket, on_accept: Callable[[trio.SocketStream], None]) -> None:
    """Accept up to ``ACCEPT_BATCH - 1`` connections already waiting, synchronously.

    Any error ends the batch: none waiting (``BlockingIOError``) or any other, which the
    next awaited accept meets again and handles (EMFILE and the like).
    """
    for _ in range(ACCEPT_BATCH - 1):
        try:
            sock, _ = batch.accept()
        except OSError:
            return
        on_accept(trio.SocketStream(trio.socket.from_stdlib_socket(sock)))
