"""Tier 3: the server over TLS on loopback (``ssl_certfile``...), with trustme's certificates
and real clients: httpx, the ``websockets`` client, curl, and Python's ``ssl`` sockets for the
exact bytes.

What is shown: ``https``/``wss`` and the ASGI TLS extension in every scope; client
certificates required (accepted and refused) and optional; a stalled handshake cut at its
deadline while another client is served; a failed handshake logged once at DEBUG with no
traceback, plain HTTP answered 400; close_notify at the end of a connection; request bodies
and backpressure, ``http.disconnect``, file responses and the PROXY protocol under TLS;
certificate reloads through ``reload_trigger``; the refusal past ``max_connections`` in TLS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
from websockets.sync.client import connect

from tests.helpers import error_records, make_config, read_until_eof, start_server
from trio_asgi import serve
from trio_asgi._h11.reader import LINGER_TIMEOUT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


class TLSFiles:
    """The server's files in a directory, and a client context that trusts the CA."""

    def __init__(self, directory: Path, ca: trustme.CA) -> None:
        self.directory = directory
        self.ca = ca
        self.certfile = str(directory / "cert.pem")
        self.keyfile = str(directory / "key.pem")
        self.cafile = str(directory / "ca.pem")
        ca.cert_pem.write_to_path(self.cafile)
        self.leaf = self.issue()

    def issue(self) -> trustme.LeafCert:
        """A new server certificate for 127.0.0.1 and localhost, written over the files."""
        leaf = self.ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(self.certfile)
        leaf.private_key_pem.write_to_path(self.keyfile)
        return leaf

    def config(self, **settings: Any) -> dict[str, Any]:
        return {"ssl_certfile": self.certfile, "ssl_keyfile": self.keyfile, **settings}

    def client_context(self, client_cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if client_cert is not None:
            client_cert.configure_cert(context)
        return context


@pytest.fixture
def tls(tmp_path: Path, ca: trustme.CA) -> TLSFiles:
    return TLSFiles(tmp_path, ca)


async def scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what the scope says of the connection, as JSON; echoes POST bodies."""
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        answer = {"scheme": scope["scheme"], "tls": scope["extensions"].get("tls")}
        await send({"type": "websocket.send", "text": json.dumps(answer)})
        if message.get("text") == "echo":
            await send({"type": "websocket.send", "text": "echo"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        content = hashlib.sha256(body).hexdigest().encode()
    else:
        content = json.dumps(
            {
                "scheme": scope["scheme"],
                "client": scope["client"],
                "tls": scope["extensions"].get("tls"),
            }
        ).encode()
    headers = [(b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def get_json(url: str, context: ssl.SSLContext) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(url)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def https_url(port: int, path: str = "/") -> str:
    return f"https://127.0.0.1:{port}{path}"


async def test_https_scope_and_the_tls_extension(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        seen = await get_json(https_url(server.port), tls.client_context())
        await server.shutdown()
    assert seen["scheme"] == "https"
    extension = seen["tls"]
    assert set(extension) == {
        "server_cert",
        "client_cert_chain",
        "client_cert_name",
        "client_cert_error",
        "tls_version",
        "cipher_suite",
    }
    assert extension["server_cert"] == tls.leaf.cert_chain_pems[0].bytes().decode()
    assert extension["client_cert_chain"] == []
    assert extension["client_cert_name"] is None
    assert extension["client_cert_error"] is None
    assert extension["tls_version"] in (0x0303, 0x0304)
    assert isinstance(extension["cipher_suite"], int)
    assert 0 < extension["cipher_suite"] <= 0xFFFF


async def test_the_extension_is_only_on_tls_connections() -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app)
        async with httpx.AsyncClient() as client:
            seen = (await client.get(server.url)).json()
        await server.shutdown()
    assert seen["scheme"] == "http"
    assert seen["tls"] is None


async def test_the_extension_names_the_negotiated_version_and_suite(tls: TLSFiles) -> None:
    context = tls.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        seen = await get_json(https_url(server.port), context)
        await server.shutdown()
    assert seen["tls"]["tls_version"] == 0x0303
    # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 and its ECDSA twin (RFC 5289).
    assert seen["tls"]["cipher_suite"] in (0xC02F, 0xC02B)


async def test_a_required_client_certificate_is_accepted_and_named(tls: TLSFiles) -> None:
    client_cert = tls.ca.issue_cert("client@example.com", common_name="client one")
    config = tls.config(ssl_ca_certs=tls.cafile, ssl_cert_reqs="required")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **config)
        seen = await get_json(https_url(server.port), tls.client_context(client_cert))
        await server.shutdown()
    extension = seen["tls"]
    assert extension["client_cert_chain"] == [client_cert.cert_chain_pems[0].bytes().decode()]
    assert "CN=client one" in extension["client_cert_name"]
    assert extension["client_cert_error"] is None


async def test_a_required_client_certificate_refuses_a_client_without_one(
    tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    client_cert = tls.ca.issue_cert("client@example.com")
    config = tls.config(ssl_ca_certs=tls.cafile, ssl_cert_reqs="required")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **config)
        with pytest.raises(httpx.HTTPError):
            await get_json(https_url(server.port), tls.client_context())
        # The server goes on serving those that have one.
        seen = await get_json(https_url(server.port), tls.client_context(client_cert))
        await server.shutdown()
    assert seen["tls"]["client_cert_chain"]
    failures = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.DEBUG
    assert failures[0].exc_info is None
    assert error_records(caplog) == []


async def test_a_client_certificate_from_another_ca_is_refused(tls: TLSFiles) -> None:
    stranger = trustme.CA().issue_cert("client@example.com")
    config = tls.config(ssl_ca_certs=tls.cafile, ssl_cert_reqs="optional")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **config)
        with pytest.raises(httpx.HTTPError):
            await get_json(https_url(server.port), tls.client_context(stranger))
        # Optional: a client may send none.
        seen = await get_json(https_url(server.port), tls.client_context())
        await server.shutdown()
    assert seen["tls"]["client_cert_chain"] == []
    assert seen["tls"]["client_cert_name"] is None


async def test_wss_with_the_websockets_client(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        url = f"wss://127.0.0.1:{server.port}/ws"

        def talk() -> tuple[str, str]:
            with connect(url, ssl=tls.client_context()) as websocket:
                websocket.send("echo")
                return str(websocket.recv()), str(websocket.recv())

        answer, echo = await trio.to_thread.run_sync(talk)
        await server.shutdown()
    seen = json.loads(answer)
    assert seen["scheme"] == "wss"
    assert seen["tls"]["server_cert"] == tls.leaf.cert_chain_pems[0].bytes().decode()
    assert echo == "echo"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (Debian package curl)")
async def test_curl_over_https(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        result = await trio.run_process(
            ["curl", "--http1.1", "-sS", "--cacert", tls.cafile, https_url(server.port)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        await server.shutdown()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scheme"] == "https"


async def test_a_stalled_handshake_is_cut_while_another_client_is_served(
    tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config(tls_handshake_timeout=0.5))
        stalled = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stalled.send_all(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        started = trio.current_time()
        seen = await get_json(https_url(server.port), tls.client_context())
        with trio.fail_after(5):
            assert await stalled.receive_some(100) == b""  # the server closed it
        waited = trio.current_time() - started
        await stalled.aclose()
        await server.shutdown()
    assert seen["scheme"] == "https"
    assert waited >= 0.4
    timeouts = [r for r in caplog.records if "timed out after 0.5 s" in r.getMessage()]
    assert len(timeouts) == 1
    assert timeouts[0].levelno == logging.DEBUG
    assert error_records(caplog) == []


async def send_in_the_clear(port: int, data: bytes) -> bytes:
    """Send ``data`` to the TLS port without TLS; what comes back until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(data)
    with trio.fail_after(5):
        answer = await read_until_eof(stream)
    await stream.aclose()
    return answer


async def test_plain_http_on_the_tls_port_gets_a_400_that_says_https(
    tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        answer = await send_in_the_clear(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await server.shutdown()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"use an https:// URL" in answer
    assert any("plain HTTP on the TLS port" in r.getMessage() for r in caplog.records)
    assert error_records(caplog) == []


async def test_garbage_instead_of_a_handshake_is_one_debug_line(
    tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        await send_in_the_clear(server.port, b"\x16\x03\x01\x00\x05hello" + bytes(range(256)))
        seen = await get_json(https_url(server.port), tls.client_context())
        await server.shutdown()
    assert seen["scheme"] == "https"
    failures = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is None
    assert error_records(caplog) == []


def _tls_socket(port: int, context: ssl.SSLContext, prefix: bytes = b"") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    if prefix:
        raw.sendall(prefix)
    return context.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)


def _exchange(sock: ssl.SSLSocket, request: bytes) -> bytes:
    """Send ``request``, read until the server's close_notify (an EOF without one raises
    ``ssl.SSLEOFError``, since ragged EOFs are not suppressed)."""
    sock.sendall(request)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


async def test_the_server_sends_close_notify_when_it_closes(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        sock = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context())
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await trio.to_thread.run_sync(_exchange, sock, request)
        sock.close()
        await server.shutdown()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"scheme": "https"' in answer


async def test_graceful_shutdown_closes_an_idle_tls_connection_with_close_notify(
    tls: TLSFiles,
) -> None:
    answered = trio.Event()

    def client(sock: ssl.SSLSocket) -> bytes:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: the server ends it
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += sock.recv(65536)
        trio.from_thread.run_sync(answered.set)
        # Idle now; at shutdown: b"" after close_notify (a bare EOF raises SSLEOFError).
        return sock.recv(65536)

    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        sock = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context())
        results: list[bytes] = []

        async def run_client() -> None:
            results.append(await trio.to_thread.run_sync(client, sock))

        nursery.start_soon(run_client)
        with trio.fail_after(5):
            await answered.wait()
            await server.shutdown()
    sock.close()
    assert results == [b""]


async def test_a_large_upload_over_tls_is_read_whole(tls: TLSFiles) -> None:
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config())
        async with httpx.AsyncClient(verify=tls.client_context()) as client:
            response = await client.post(https_url(server.port), content=body)
        await server.shutdown()
    assert response.text == hashlib.sha256(body).hexdigest()


async def test_http_disconnect_under_tls(tls: TLSFiles) -> None:
    disconnected = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, app, **tls.config())
        sock = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context())
        await trio.to_thread.run_sync(sock.sendall, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await trio.to_thread.run_sync(sock.recv, 65536)
        sock.close()
        with trio.fail_after(5):
            await disconnected.wait()
        await server.shutdown()
    assert head.startswith(b"HTTP/1.1 200 ")


async def test_a_file_response_over_tls(tls: TLSFiles, tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 1024)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, app, **tls.config())
        async with httpx.AsyncClient(verify=tls.client_context()) as client:
            response = await client.get(https_url(server.port))
        await server.shutdown()
    assert response.content == path.read_bytes()


async def test_the_proxy_protocol_header_comes_before_tls(tls: TLSFiles) -> None:
    header = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 443\r\n"
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config(proxy_protocol=True))
        sock = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context(), header)
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await trio.to_thread.run_sync(_exchange, sock, request)
        sock.close()
        await server.shutdown()
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert seen["client"] == ["203.0.113.7", 51234]
    assert seen["scheme"] == "https"


async def test_past_max_connections_the_503_is_sent_in_tls(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config(max_connections=1))
        first = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context())
        second = await trio.to_thread.run_sync(_tls_socket, server.port, tls.client_context())
        answer = await trio.to_thread.run_sync(second.recv, 65536)
        first.close()
        second.close()
        await server.shutdown()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


async def test_reload_trigger_swaps_the_certificate_for_new_connections(
    tls: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    send_reload, receive_reload = trio.open_memory_channel[None](0)
    waiting = trio.Semaphore(0, max_value=None)  # released each time the reloader waits

    async def reload_trigger() -> None:
        waiting.release()
        await receive_reload.receive()

    async def reload() -> None:
        await send_reload.send(None)
        await waiting.acquire()  # the reload is done: the reloader waits again

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: serve(
                scope_app,
                make_config(port=0, **tls.config()),
                shutdown_trigger=shutdown.wait,
                reload_trigger=reload_trigger,
                task_status=task_status,
            )
        )
        url = https_url(addresses[0][1])
        await waiting.acquire()
        first = (await get_json(url, tls.client_context()))["tls"]["server_cert"]
        renewed = tls.issue()
        await reload()
        second = (await get_json(url, tls.client_context()))["tls"]["server_cert"]
        await trio.Path(tls.certfile).write_text("not a certificate")
        await reload()
        third = (await get_json(url, tls.client_context()))["tls"]["server_cert"]
        shutdown.set()
    assert first == tls.leaf.cert_chain_pems[0].bytes().decode()
    assert second == renewed.cert_chain_pems[0].bytes().decode() != first
    assert third == second  # the broken file left the renewed certificate in use
    failed = [r for r in caplog.records if "TLS reload failed" in r.getMessage()]
    assert len(failed) == 1
    assert "holds no PEM certificate" in failed[0].getMessage()


async def open_tls_stream(port: int, tls: TLSFiles) -> trio.SSLStream[trio.SocketStream]:
    """A client TLS stream in this Trio run (so wait_all_tasks_blocked sees both ends).
    Reading it to the end (``read_until_eof``) proves the server's close_notify: a bare EOF
    raises ``trio.BrokenResourceError``."""
    raw = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(raw, tls.client_context(), server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def test_downloads_are_backpressured_under_tls(tls: TLSFiles) -> None:
    chunk = b"x" * 65536
    total = 1024  # 64 MiB, far more than the socket buffers hold
    sent = [0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(total):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b""})

    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, app, **tls.config())
        stream = await open_tls_stream(server.port, tls)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        held_back = sent[0]
        received = await read_until_eof(stream)
        await stream.aclose()
        await server.shutdown()
    assert held_back < total // 4  # the app waited for the client, at most socket buffers
    assert sent[0] == total
    assert received.count(b"x") == total * len(chunk)


async def test_an_idle_tls_connection_ends_at_the_keep_alive_timeout(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config(keep_alive_timeout=0.3))
        stream = await open_tls_stream(server.port, tls)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        started = trio.current_time()
        with trio.fail_after(5):
            received = await read_until_eof(stream)
        idle = trio.current_time() - started
        await stream.aclose()
        await server.shutdown()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert idle >= 0.25


async def test_a_slow_request_head_gets_408_under_tls(tls: TLSFiles) -> None:
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, scope_app, **tls.config(request_header_timeout=0.3))
        stream = await open_tls_stream(server.port, tls)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        started = trio.current_time()
        with trio.fail_after(5):
            received = await read_until_eof(stream)
        waited = trio.current_time() - started
        await stream.aclose()
        await server.shutdown()
    assert received.startswith(b"HTTP/1.1 408 ")
    # Closed after the 408 (TLS cannot half-close), not after a LINGER_TIMEOUT drain.
    assert waited < LINGER_TIMEOUT
