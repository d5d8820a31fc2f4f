"""Tier 3: the real server behind a real nginx running docs/deploy/'s site configs.

nginx runs each site file as a user would install it (tests/deploy_configs.py replaces only
the ports, the socket path and the certificate paths), inside a top-level nginx.conf of the
test's own (foreground, pid, logs and temp files in a temporary directory). One nginx per
site file serves the whole module; each test serves its own app on the upstream address that
nginx was started with: a listening socket the module holds (each server gets a duplicate of
it) or the Unix socket path.

Clients connect to nginx from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback), so the
address the app sees can only have come from nginx's X-Forwarded-For.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
import websockets.sync.client

from ..deploy_configs import deploy_config
from ..helpers import RunningServer, start_server

NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
pytestmark = pytest.mark.skipif(NGINX is None, reason="needs nginx (the nginx package)")

CLIENT_HOST = "127.0.0.2"  # the client's source address: never nginx's own
STARTUP_TIMEOUT = 10.0  # seconds nginx gets to bind its ports, all retries included
TIMEOUT = 10.0  # seconds for one client exchange

#: The top-level nginx.conf around a site file: what /etc/nginx/nginx.conf gives a site on
#: Debian, with every path in the test's directory. As root (CI), the workers run as root
#: too, so they can reach the Unix socket in the test's private temporary directory.
NGINX_MAIN = """\
daemon off;
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def free_port() -> int:
    """A port no socket holds right now (nginx cannot listen on port 0 and report it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Nginx:
    """An nginx serving one site file in the foreground."""

    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    directory: Path

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_until_bound(proc: subprocess.Popen[bytes], directory: Path, deadline: float) -> bool:
    """Whether nginx bound every port: it writes its pid file once all its listening sockets
    are open, and logs a bind() error (retrying for 2.5 s) if one is taken. Returns False on
    the bind error, raises if nginx exits or misses the deadline for another reason."""
    pid_file = directory / "nginx.pid"
    error_log = directory / "error.log"
    while True:
        log = error_log.read_text() if error_log.exists() else ""
        if "Address already in use" in log:
            return False
        if pid_file.exists() and pid_file.read_text().strip() == str(proc.pid):
            return True
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not start in {STARTUP_TIMEOUT} s:\n{log}")
        try:
            code = proc.wait(timeout=0.01)  # the pause between looks, cut short by an exit
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"nginx exited with {code}:\n{log}")


def start_nginx(directory: Path, site: str, port_names: tuple[str, ...]) -> Nginx:
    """Run nginx on ``site`` (a site file's text with ``{port_name}`` fields for its ports),
    on free ports, retrying with new ones while another process takes one first; return once
    a connection to each port is accepted."""
    assert NGINX is not None
    user = "user root;" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(NGINX_MAIN.format(dir=directory, user=user))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        ports = {name: free_port() for name in port_names}
        (directory / "site.conf").write_text(site.format(**ports))
        for stale in ("nginx.pid", "error.log"):
            (directory / stale).unlink(missing_ok=True)
        proc = subprocess.Popen(
            [NGINX, "-e", f"{directory}/error.log", "-p", str(directory), "-c", str(main)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx = Nginx(proc, ports, directory)
        if _wait_until_bound(proc, directory, deadline):
            for port in ports.values():  # bound and listening: accepted at once
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
            return nginx
        nginx.stop()


def braces(text: str) -> str:
    """``text`` with its braces doubled, so ``str.format`` leaves them alone."""
    return text.replace("{", "{{").replace("}", "}}")


@dataclass
class TCPEdge:
    """nginx on docs/deploy/nginx-trio-asgi.conf, proxying to ``upstream``."""

    nginx: Nginx
    upstream: socket.socket
    ca: trustme.CA

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def tcp_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TCPEdge]:
    directory = tmp_path_factory.mktemp("nginx-tcp")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen(64)
        site = deploy_config(
            "nginx-trio-asgi.conf",
            {
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream.getsockname()[1]};",
                "listen 80;": "listen 127.0.0.1:@http@;",
                "listen 443 ssl;": "listen 127.0.0.1:@https@ ssl;",
                "/etc/ssl/certs/example.com.pem": str(directory / "server.pem"),
                "/etc/ssl/private/example.com.key": str(directory / "server.pem"),
            },
        )
        site = braces(site).replace("@http@", "{http}").replace("@https@", "{https}")
        nginx = start_nginx(directory, site, ("http", "https"))
        try:
            yield TCPEdge(nginx, upstream, ca)
        finally:
            nginx.stop()


@dataclass
class UnixEdge:
    """nginx on docs/deploy/nginx-trio-asgi-unix.conf, proxying to ``socket_path``."""

    nginx: Nginx
    socket_path: str


@pytest.fixture(scope="module")
def unix_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnixEdge]:
    directory = tmp_path_factory.mktemp("nginx-unix")
    socket_path = str(directory / "trio-asgi.sock")
    site = deploy_config(
        "nginx-trio-asgi-unix.conf",
        {"/run/trio-asgi.sock;": socket_path + ";", "listen 80;": "listen 127.0.0.1:@http@;"},
    )
    nginx = start_nginx(directory, braces(site).replace("@http@", "{http}"), ("http",))
    try:
        yield UnixEdge(nginx, socket_path)
    finally:
        nginx.stop()


@dataclass
class EdgeApp:
    """Answers an HTTP request with what its scope says (JSON); echoes a WebSocket's
    messages and records the code it closed with."""

    scopes: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await self._echo(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = {
            "client": scope["client"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "query_string": scope["query_string"].decode(),
            "body": body.decode(),
        }
        answer = json.dumps(seen).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _echo(self, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.close_codes.append(message["code"])
                return
            data = {key: value for key, value in message.items() if key in ("text", "bytes")}
            await send({"type": "websocket.send", **data})


def edge_client(verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An HTTP client whose connections come from :data:`CLIENT_HOST`."""
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_HOST, verify=verify)
    return httpx.AsyncClient(transport=transport, timeout=TIMEOUT)


async def serve_upstream(
    nursery: trio.Nursery, edge: TCPEdge, app: EdgeApp, **config: Any
) -> RunningServer:
    """Serve ``app`` on the upstream socket nginx proxies to (a duplicate: serve() closes
    its own)."""
    return await start_server(
        nursery, app, fd=os.dup(edge.upstream.fileno()), lifespan="off", **config
    )


async def test_a_plain_request_through_nginx_reaches_the_app(
    nursery: trio.Nursery, tcp_edge: TCPEdge
) -> None:
    app = EdgeApp()
    server = await serve_upstream(nursery, tcp_edge, app)
    url = f"http://127.0.0.1:{tcp_edge.nginx.ports['http']}/items/7?page=2"
    async with edge_client() as client:
        response = await client.post(url, content=b"payload" * 1000)
    assert response.status_code == 200
    assert response.json() == {
        "client": [CLIENT_HOST, 0],
        "scheme": "http",
        "path": "/items/7",
        "query_string": "page=2",
        "body": "payload" * 1000,
    }
    await server.shutdown()


async def test_nginx_reuses_one_upstream_connection(
    nursery: trio.Nursery, tcp_edge: TCPEdge
) -> None:
    """With proxy headers off, ``client`` is the socket's peer: nginx's end of the upstream
    connection. Requests from two client connections all arrive on one upstream connection
    (``keepalive`` in the upstream block, no Connection header on plain requests)."""
    app = EdgeApp()
    server = await serve_upstream(nursery, tcp_edge, app, proxy_headers=False)
    url = f"http://127.0.0.1:{tcp_edge.nginx.ports['http']}/"
    for _ in range(2):
        async with edge_client() as client:
            for _ in range(3):
                assert (await client.get(url)).status_code == 200
    peers = {tuple(scope["client"]) for scope in app.scopes}
    assert len(app.scopes) == 6
    assert len(peers) == 1
    [(host, _)] = peers
    assert host == "127.0.0.1"
    await server.shutdown()


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_forwarded_headers_give_the_real_client_and_scheme(
    nursery: trio.Nursery, tcp_edge: TCPEdge, scheme: str
) -> None:
    """The client's own X-Forwarded-For entry and Forwarded header are no use to it: nginx
    appends the address it saw and clears Forwarded, and the scheme is the one the client
    spoke to nginx (X-Forwarded-Proto)."""
    app = EdgeApp()
    server = await serve_upstream(nursery, tcp_edge, app)
    url = f"{scheme}://127.0.0.1:{tcp_edge.nginx.ports[scheme]}/"
    spoofed = {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9;proto=https"}
    async with edge_client(verify=tcp_edge.client_context()) as client:
        response = await client.get(url, headers=spoofed)
    assert response.status_code == 200
    seen = response.json()
    assert (seen["client"], seen["scheme"]) == ([CLIENT_HOST, 0], scheme)
    await server.shutdown()


def websocket_echo_over_tls(port: int, context: ssl.SSLContext) -> tuple[list[Any], int | None]:
    """In a thread: the ``websockets`` client, connected from :data:`CLIENT_HOST`, sends a
    text and a binary message, reads their echoes, then closes (1000)."""
    sock = socket.socket()
    sock.bind((CLIENT_HOST, 0))
    sock.connect(("127.0.0.1", port))
    url = f"wss://127.0.0.1:{port}/ws"
    with websockets.sync.client.connect(
        url, sock=sock, ssl=context, open_timeout=TIMEOUT, close_timeout=TIMEOUT
    ) as ws:
        echoes = []
        for message in ("hello", b"\x00\x01binary"):
            ws.send(message)
            echoes.append(ws.recv(timeout=TIMEOUT))
    close = ws.protocol.close_rcvd
    assert close is not None  # the server's close frame came back through nginx
    return echoes, close.code


async def test_websocket_through_nginx_over_tls(nursery: trio.Nursery, tcp_edge: TCPEdge) -> None:
    app = EdgeApp()
    server = await serve_upstream(nursery, tcp_edge, app)
    echoes, close_code = await trio.to_thread.run_sync(
        websocket_echo_over_tls, tcp_edge.nginx.ports["https"], tcp_edge.client_context()
    )
    assert echoes == ["hello", b"\x00\x01binary"]
    assert close_code == 1000
    [scope] = app.scopes
    assert (scope["type"], scope["scheme"], scope["client"]) == (
        "websocket",
        "wss",
        (CLIENT_HOST, 0),
    )
    assert app.close_codes == [1000]
    await server.shutdown()


async def test_unix_socket_upstream_trusts_nginx_as_unix(
    nursery: trio.Nursery, unix_edge: UnixEdge
) -> None:
    """trio-asgi on ``--uds`` with ``--forwarded-allow-ips unix``: nginx's X-Forwarded-For
    names the client; the server is the socket path."""
    app = EdgeApp()
    server = await start_server(
        nursery, app, uds=unix_edge.socket_path, forwarded_allow_ips="unix", lifespan="off"
    )
    async with edge_client() as client:
        response = await client.get(f"http://127.0.0.1:{unix_edge.nginx.ports['http']}/unix")
    assert response.status_code == 200
    assert response.json()["client"] == [CLIENT_HOST, 0]
    [scope] = app.scopes
    assert scope["server"] == (unix_edge.socket_path, None)
    await server.shutdown()
