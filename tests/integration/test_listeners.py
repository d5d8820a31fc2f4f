"""Tier 3: ``_net.listeners.bind`` on real sockets: Unix domain sockets in ``tmp_path`` (a
stale file replaced, a live server's path refused, a non-socket path refused, permissions,
removal at shutdown), inherited descriptors (``fd://N``: a listening socket adopted, a UDP
socket, a socket that is not listening and a descriptor that is no socket refused with what
they are), IPv6 on ``::1``, several binds at once, and nothing leaked when a later bind fails.
One request is served end to end through a Unix listener by ``serve(..., listeners=...)``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_asgi import Config, ConfigError, serve
from trio_asgi._net.binds import Bind, FDBind, TCPBind, UnixBind
from trio_asgi._net.listeners import (
    ListenError,
    bind,
    listener_address,
    unix_socket_files,
    unlink_unix_sockets,
)
from trio_asgi._types import TCPAddress, UnixAddress

from ..helpers import make_config

BACKLOG = 16


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "app.sock")


@pytest.fixture
def own_sockets() -> Iterator[list[socket.socket]]:
    """Stdlib sockets a test makes to stand for someone else's; closed at the end."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def make_socket(
    own: list[socket.socket], family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    sock = socket.socket(family, kind)
    own.append(sock)
    return sock


async def bind_one(item: Bind, **options: Any) -> trio.SocketListener:
    [listener] = await bind([item], BACKLOG, **options)
    return listener


async def assert_accepts(listener: trio.SocketListener) -> None:
    """A client connects to ``listener`` and the server side sees the bytes it sends."""
    address = listener_address(listener)
    client: trio.SocketStream
    if isinstance(address, UnixAddress):
        client = await trio.open_unix_socket(address.path)
    else:
        client = await trio.open_tcp_stream(address.host, address.port)
    async with client:
        await client.send_all(b"ping")
        async with await listener.accept() as server:
            assert await server.receive_some(4) == b"ping"


# -- Unix domain sockets ---------------------------------------------------------------------


async def test_a_unix_bind_listens_and_reports_its_path(sock_path: str) -> None:
    async with await bind_one(UnixBind(sock_path)) as listener:
        assert listener_address(listener) == UnixAddress(sock_path)
        assert type(listener_address(listener)) is UnixAddress
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
        await assert_accepts(listener)


async def test_a_stale_socket_file_is_replaced(
    sock_path: str, own_sockets: list[socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    dead = make_socket(own_sockets, socket.AF_UNIX)
    dead.bind(sock_path)
    dead.listen()
    dead.close()  # the server died; its file stays behind
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    async with await bind_one(UnixBind(sock_path)) as listener:
        await assert_accepts(listener)  # a live listener where the dead one was
    assert f"Removed unix:{sock_path}, a stale socket nobody listens on" in caplog.messages


async def test_a_path_a_live_server_listens_on_is_refused_and_left_to_it(
    sock_path: str, own_sockets: list[socket.socket]
) -> None:
    live = make_socket(own_sockets, socket.AF_UNIX)
    live.bind(sock_path)
    live.listen()
    inode = os.lstat(sock_path).st_ino
    with pytest.raises(ListenError, match=r"^another server listens on unix:") as caught:
        await bind_one(UnixBind(sock_path))
    assert str(caught.value) == (
        f"another server listens on unix:{sock_path}; stop it or choose another path"
    )
    assert caught.value.errno == errno.EADDRINUSE
    assert isinstance(caught.value, OSError)
    assert os.lstat(sock_path).st_ino == inode  # never stolen
    client = make_socket(own_sockets, socket.AF_UNIX)
    client.connect(sock_path)  # the live server still gets its clients


async def test_a_live_server_with_a_full_backlog_is_refused_too(
    sock_path: str, own_sockets: list[socket.socket]
) -> None:
    live = make_socket(own_sockets, socket.AF_UNIX)
    live.bind(sock_path)
    live.listen(0)
    with pytest.raises(BlockingIOError):  # fill the backlog until connect would wait
        fill_backlog(own_sockets, sock_path)
    with pytest.raises(ListenError, match=r"^another server listens on unix:"):
        await bind_one(UnixBind(sock_path))


def fill_backlog(own: list[socket.socket], path: str) -> None:
    """Connect to ``path`` without waiting until a connect would wait (BlockingIOError)."""
    for _ in range(8):
        client = make_socket(own, socket.AF_UNIX)
        client.setblocking(False)
        client.connect(path)


@pytest.mark.parametrize("kind", ["a regular file", "a directory"])
async def test_a_path_that_is_not_a_socket_is_refused_and_left_alone(
    sock_path: str, kind: str
) -> None:
    if kind == "a directory":
        os.mkdir(sock_path)
    else:
        await trio.Path(sock_path).write_text("data")
    with pytest.raises(ListenError) as caught:
        await bind_one(UnixBind(sock_path))
    assert str(caught.value) == (
        f"unix:{sock_path} exists and is not a socket ({kind}); remove it or choose another path"
    )
    assert caught.value.errno == errno.EEXIST
    if kind == "a directory":
        assert await trio.Path(sock_path).is_dir()
    else:
        assert await trio.Path(sock_path).read_text() == "data"


@pytest.mark.parametrize("mode", [0o600, 0o666, 0o660])
async def test_uds_permissions_set_the_socket_files_mode(sock_path: str, mode: int) -> None:
    old_umask = os.umask(0o077)  # the mode given wins over the umask
    try:
        listener = await bind_one(UnixBind(sock_path), uds_permissions=mode)
    finally:
        os.umask(old_umask)
    async with listener:
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == mode


async def test_without_uds_permissions_the_umask_decides(sock_path: str) -> None:
    old_umask = os.umask(0o077)
    try:
        listener = await bind_one(UnixBind(sock_path))
    finally:
        os.umask(old_umask)
    async with listener:
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o700


@pytest.mark.parametrize("mode", [-1, 0o1000, 0o4755])
async def test_out_of_range_uds_permissions_are_refused(sock_path: str, mode: int) -> None:
    with pytest.raises(
        ConfigError, match=f"uds_permissions must be a mode from 0 to 0o777, not {mode}"
    ):
        await bind([UnixBind(sock_path)], BACKLOG, uds_permissions=mode)
    assert not await trio.Path(sock_path).exists()


async def test_the_socket_files_are_removed_at_shutdown_while_still_ours(tmp_path: Path) -> None:
    ours, replaced = str(tmp_path / "ours.sock"), str(tmp_path / "replaced.sock")
    binds: list[Bind] = [UnixBind(ours), UnixBind(replaced), TCPBind("127.0.0.1", 0)]
    listeners = await bind(binds, BACKLOG)
    files = unix_socket_files(binds)
    assert [file.path for file in files] == [ours, replaced]
    for listener in listeners:
        await listener.aclose()
    os.unlink(replaced)
    await trio.Path(replaced).write_text("someone else's")  # another file took the path
    unlink_unix_sockets(files)
    assert not await trio.Path(ours).exists()
    assert await trio.Path(replaced).read_text() == "someone else's"
    unlink_unix_sockets(files)  # again: the file is gone, nothing is raised


# -- inherited descriptors (fd://N) ----------------------------------------------------------


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX], ids=["tcp", "unix"])
async def test_an_inherited_listening_socket_is_adopted_with_its_family(
    family: int, sock_path: str
) -> None:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0) if family == socket.AF_INET else sock_path)
    sock.listen()
    os.set_inheritable(sock.fileno(), True)  # as a parent passes it
    fd = sock.detach()
    async with await bind_one(FDBind(fd)) as listener:
        assert listener.socket.fileno() == fd
        assert listener.socket.family == family
        assert not os.get_inheritable(fd)  # not passed on to our own children
        address = listener_address(listener)
        expected = UnixAddress if family == socket.AF_UNIX else TCPAddress
        assert type(address) is expected
        await assert_accepts(listener)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # closed with its listener


async def test_a_systemd_socket_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    fd = sock.detach()
    caplog.set_level(logging.INFO, logger="trio_asgi.error")
    async with await bind_one(FDBind(fd, name="web")):
        assert f"Serving systemd's socket fd {fd} (named 'web')" in caplog.messages


@pytest.mark.parametrize(
    ("family", "kind", "listen", "what"),
    [
        (socket.AF_INET, socket.SOCK_DGRAM, False, "is a UDP socket, not a TCP one"),
        (socket.AF_INET6, socket.SOCK_DGRAM, False, "is a UDP socket, not a TCP one"),
        (
            socket.AF_UNIX,
            socket.SOCK_DGRAM,
            False,
            "is a Unix datagram socket, not a stream (TCP or Unix stream) one",
        ),
        (
            socket.AF_UNIX,
            socket.SOCK_SEQPACKET,
            True,
            "is a Unix seqpacket socket, not a stream (TCP or Unix stream) one",
        ),
        (
            socket.AF_INET,
            socket.SOCK_STREAM,
            False,
            "is a TCP socket that is not listening (call listen() before passing it)",
        ),
        (
            socket.AF_UNIX,
            socket.SOCK_STREAM,
            False,
            "is a Unix stream socket that is not listening (call listen() before passing it)",
        ),
    ],
)
async def test_a_socket_that_is_not_a_listening_stream_socket_is_refused_with_what_it_is(
    own_sockets: list[socket.socket], family: int, kind: int, listen: bool, what: str
) -> None:
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    sock = make_socket(own_sockets, family, kind)
    if listen:
        sock.bind("")  # Linux: an autobound abstract address
        sock.listen()
    with pytest.raises(ListenError) as caught:
        await bind_one(FDBind(sock.fileno()))
    assert str(caught.value) == f"fd {sock.fileno()} {what}"
    assert caught.value.errno == errno.EINVAL
    assert sock.fileno() != -1
    os.fstat(sock.fileno())  # refused, not closed: the descriptor is the caller's still


async def test_a_descriptor_that_is_no_socket_is_refused_with_what_it_is(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ListenError, match=f"^fd {read_end} is not a socket \\(a pipe\\)$"):
            await bind_one(FDBind(read_end))
        regular = os.open(tmp_path / "file", os.O_CREAT | os.O_WRONLY)
        try:
            with pytest.raises(
                ListenError, match=f"^fd {regular} is not a socket \\(a regular file\\)$"
            ) as caught:
                await bind_one(FDBind(regular))
            os.fstat(regular)  # left open
        finally:
            os.close(regular)
        assert caught.value.errno == errno.ENOTSOCK
        os.fstat(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_a_descriptor_that_is_not_open_is_refused() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(ListenError, match=f"^fd {read_end} is not open$"):
        await bind_one(FDBind(read_end))


# -- TCP, IPv6, several binds, failures --------------------------------------------------------


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")
async def test_ipv6_loopback() -> None:
    async with await bind_one(TCPBind("::1", 0)) as listener:
        address = listener_address(listener)
        assert address.host == "::1"
        assert isinstance(address.port, int)
        assert address.port > 0
        await assert_accepts(listener)


async def test_several_binds_listen_together_in_order(
    sock_path: str, own_sockets: list[socket.socket]
) -> None:
    inherited = make_socket(own_sockets)
    inherited.bind(("127.0.0.1", 0))
    inherited.listen()
    inherited_port = inherited.getsockname()[1]
    binds: list[Bind] = [TCPBind("127.0.0.1", 0), UnixBind(sock_path), FDBind(inherited.detach())]
    listeners = await bind(binds, BACKLOG)
    try:
        addresses = [listener_address(listener) for listener in listeners]
        assert [type(address) for address in addresses] == [TCPAddress, UnixAddress, TCPAddress]
        assert addresses[1:] == [UnixAddress(sock_path), TCPAddress("127.0.0.1", inherited_port)]
        for listener in listeners:
            await assert_accepts(listener)
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_a_host_name_listens_on_every_address_it_resolves_to() -> None:
    expected = {
        info[4][0]
        for info in socket.getaddrinfo(
            "localhost", 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    }
    listeners = await bind([TCPBind("localhost", 0)], BACKLOG)
    try:
        assert {listener_address(listener).host for listener in listeners} == expected
    finally:
        for listener in listeners:
            await listener.aclose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_failed_later_bind_closes_what_was_bound_before(
    tmp_path: Path, own_sockets: list[socket.socket]
) -> None:
    port = free_port()
    inherited = make_socket(own_sockets)
    inherited.bind(("127.0.0.1", 0))
    inherited.listen()
    fd = inherited.detach()
    created = str(tmp_path / "created.sock")
    not_a_socket = tmp_path / "not-a-socket"
    await trio.Path(not_a_socket).write_text("")
    binds: list[Bind] = [
        TCPBind("127.0.0.1", port),
        UnixBind(created),
        FDBind(fd),
        UnixBind(str(not_a_socket)),
    ]
    with pytest.raises(ListenError, match="exists and is not a socket"):
        await bind(binds, BACKLOG)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # the adopted descriptor was closed
    assert not await trio.Path(created).exists()  # the socket file made was removed
    again = make_socket(own_sockets)
    again.bind(("127.0.0.1", port))
    again.listen()  # the TCP port is free again: its listener was closed


async def test_a_bind_listed_twice_is_refused_before_any_is_bound(sock_path: str) -> None:
    with pytest.raises(ConfigError, match=f"^unix:{sock_path} is listed twice$"):
        await bind([UnixBind(sock_path), TCPBind("127.0.0.1", 0), UnixBind(sock_path)], BACKLOG)
    with pytest.raises(ConfigError, match=r"^fd://7 is listed twice$"):
        await bind([FDBind(7), FDBind(7, name="web")], BACKLOG)
    with pytest.raises(ConfigError, match=r"^\[::1\]:80 is listed twice$"):
        await bind([TCPBind("::1", 80), TCPBind("::1", 80)], BACKLOG)
    assert not await trio.Path(sock_path).exists()


# -- end to end --------------------------------------------------------------------------------


async def test_a_request_served_through_a_unix_listener(
    nursery: trio.Nursery, sock_path: str
) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"over a Unix socket"})

    binds: list[Bind] = [UnixBind(sock_path)]
    listeners = await bind(binds, BACKLOG)
    files = unix_socket_files(binds)
    stop = trio.Event()
    done = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        config: Config = make_config(lifespan="off")
        try:
            await serve(
                app, config, shutdown_trigger=stop.wait, listeners=listeners,
                task_status=task_status,
            )  # fmt: skip
        finally:
            unlink_unix_sockets(files)
            done.set()

    addresses = await nursery.start(run)
    assert addresses == [UnixAddress(sock_path)]
    transport = httpx.AsyncHTTPTransport(uds=sock_path)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("http://localhost/path")
    assert (response.status_code, response.text) == (200, "over a Unix socket")
    [scope] = scopes
    assert scope["client"] is None  # as the ASGI spec asks for a Unix socket's peer
    assert scope["server"] == (sock_path, None)  # the ASGI spec's [path, None]
    stop.set()
    await done.wait()
    assert not await trio.Path(sock_path).exists()  # removed at shutdown
