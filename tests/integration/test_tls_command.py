"""Tier 3: the ``trio-asgi`` command over TLS in a subprocess: it serves ``https://`` and a
SIGHUP reads the certificate files again (serve()'s ``reload_trigger``; the reload itself is
tested in process in tests/integration/test_tls.py). Runs once, not once per parser."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from tests.integration.test_tls import TLSFiles


@pytest.fixture
def http_parser() -> str:
    """The command picks its own parser: run once (tests/integration/conftest.py)."""
    return "auto"


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    return TLSFiles(tmp_path, trustme.CA())


def test_the_command_reloads_on_sighup(tls: TLSFiles, tmp_path: Path) -> None:
    (tmp_path / "tls_app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'ok'})\n"
    )
    command = [
        sys.executable,
        "-m",
        "trio_asgi",
        "--app-dir",
        str(tmp_path),
        "--port",
        "0",
        "--lifespan",
        "off",
        "--ssl-certfile",
        tls.certfile,
        "--ssl-keyfile",
        tls.keyfile,
        "tls_app:app",
    ]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            port = None
            for line in process.stderr:
                if "Listening on https://127.0.0.1:" in line:
                    port = int(line.split("https://127.0.0.1:")[1].split()[0])
                    break
            assert port is not None
            before = ssl.get_server_certificate(("127.0.0.1", port))
            renewed = tls.issue()
            process.send_signal(signal.SIGHUP)
            for line in process.stderr:
                if "TLS certificate reloaded" in line:
                    break
            after = ssl.get_server_certificate(("127.0.0.1", port))
            assert process.poll() is None  # SIGHUP did not end it
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert before == tls.leaf.cert_chain_pems[0].bytes().decode()
    assert after == renewed.cert_chain_pems[0].bytes().decode()
