"""Tier 3: proxy headers on the real server: who is believed, what the scope and the log say.

The reading rules themselves (every header form, the walk from the right, malformed values)
are tier 1, tests/proto/test_forwarded.py; these tests check the wiring on a loopback
server (the peer is 127.0.0.1, trusted by the default ``forwarded_allow_ips``), for HTTP and
WebSocket, and the command-line surface (``--forwarded-allow-ips``, ``FORWARDED_ALLOW_IPS``,
``--no-proxy-headers``) in process with a fake ``serve()``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner

from trio_asgi import Config
from trio_asgi._cli import command as _cli

from ..helpers import start_server
from ..websocket_tools import trio_websocket_client

PROXY_NOTE = "Proxy headers: "  # how the one debug line about ignored headers begins


async def scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request and WebSocket session with its scope's client, scheme and
    root_path as JSON."""
    if scope["type"] == "lifespan":
        return
    seen = {key: scope[key] for key in ("client", "scheme", "root_path")}
    text = json.dumps(seen)
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})
    else:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.close", "code": 1000})


async def get_scope(
    nursery: trio.Nursery, headers: dict[str, str], **config: Any
) -> tuple[dict[str, Any], int]:
    """The scope values one request with ``headers`` saw, and the client's own port."""
    server = await start_server(nursery, scope_app, **config)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/", headers=headers)
        # The client's own address, as the server's socket sees it (127.0.0.1, ephemeral).
        own = await http.get("/")
    await server.shutdown()
    return response.json(), own.json()["client"][1]


def proxy_notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "trio_asgi.error" and record.getMessage().startswith(PROXY_NOTE)
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-forwarded-for": "203.0.113.7"}, {"client": ["203.0.113.7", 0]}),
        ({"x-forwarded-for": "203.0.113.7:5555"}, {"client": ["203.0.113.7", 5555]}),
        ({"x-forwarded-proto": "https"}, {"scheme": "https"}),
        ({"x-forwarded-prefix": "/api/"}, {"root_path": "/api"}),
        (
            {"forwarded": 'for="[2001:db8::1]:4711";proto=https'},
            {"client": ["2001:db8::1", 4711], "scheme": "https"},
        ),
        (  # Forwarded takes precedence over X-Forwarded-For/-Proto
            {
                "forwarded": "for=198.51.100.2;proto=http",
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-proto": "https",
            },
            {"client": ["198.51.100.2", 0], "scheme": "http"},
        ),
        ({"forwarded": "for=unknown"}, {"client": None}),
    ],
)
async def test_a_trusted_peers_headers_set_the_scope(
    nursery: trio.Nursery, headers: dict[str, str], expected: dict[str, Any]
) -> None:
    seen, _ = await get_scope(nursery, headers)
    assert {key: seen[key] for key in expected} == expected
    untouched = {"scheme": "http", "root_path": ""}
    assert {k: seen[k] for k in untouched if k not in expected} == {
        k: v for k, v in untouched.items() if k not in expected
    }


ALL_HEADERS = {
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "https",
    "x-forwarded-prefix": "/api",
    "forwarded": "for=198.51.100.2;proto=https",
}


async def test_an_untrusted_peers_headers_are_ignored_with_one_debug_line(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    seen, port = await get_scope(nursery, ALL_HEADERS, forwarded_allow_ips="10.0.0.1")
    assert seen == {"client": ["127.0.0.1", port], "scheme": "http", "root_path": ""}
    notes = proxy_notes(caplog)
    assert len(notes) == 1
    assert f"from 127.0.0.1:{port} ignored: the peer is not in forwarded_allow_ips" in notes[0]


async def test_no_proxy_headers_ignores_them_silently(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    seen, port = await get_scope(nursery, ALL_HEADERS, proxy_headers=False, root_path="/app")
    assert seen == {"client": ["127.0.0.1", port], "scheme": "http", "root_path": "/app"}
    assert proxy_notes(caplog) == []


async def test_a_spoofed_left_most_x_forwarded_for_entry_is_not_taken(
    nursery: trio.Nursery,
) -> None:
    # The client wrote "6.6.6.6"; its real address 203.0.113.7 was appended by the proxy at
    # 10.0.0.2, whose address the proxy in front of us (127.0.0.1) appended in turn.
    headers = {"x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.0.0.2"}
    seen, _ = await get_scope(nursery, headers, forwarded_allow_ips="127.0.0.1,10.0.0.0/8")
    assert seen["client"] == ["203.0.113.7", 0]


async def test_a_malformed_header_is_ignored_with_one_debug_line(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi.error")
    headers = {"x-forwarded-for": "not-an-address", "x-forwarded-proto": "https"}
    seen, port = await get_scope(nursery, headers)
    assert seen == {"client": ["127.0.0.1", port], "scheme": "https", "root_path": ""}
    assert proxy_notes(caplog) == [
        "Proxy headers: malformed X-Forwarded-For header ignored: 'not-an-address'"
    ]


async def test_a_websocket_scope_gets_wss_and_the_real_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.access")
    server = await start_server(nursery, scope_app)
    headers = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7")]
    headers.append(("X-Forwarded-Prefix", "/ws-root"))
    async with trio_websocket_client(server, "/", extra_headers=headers) as ws:
        seen = json.loads(await ws.get_message())
    await server.shutdown()
    assert seen == {"client": ["203.0.113.7", 0], "scheme": "wss", "root_path": "/ws-root"}
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert len(lines) == 1
    assert lines[0].startswith('203.0.113.7:0 - "GET / HTTP/1.1" 101 ')


async def test_a_websocket_from_an_untrusted_peer_keeps_ws(nursery: trio.Nursery) -> None:
    server = await start_server(nursery, scope_app, forwarded_allow_ips="")
    async with trio_websocket_client(
        server, "/", extra_headers=[("X-Forwarded-Proto", "https")]
    ) as ws:
        seen = json.loads(await ws.get_message())
    await server.shutdown()
    assert (seen["scheme"], seen["client"][0], seen["root_path"]) == ("ws", "127.0.0.1", "")


# -- the command line, in process with a fake serve() -----------------------------------------


class FakeServe:
    """Stands in for trio_asgi.serve: records the Config and returns at once."""

    def __init__(self) -> None:
        self.configs: list[Config] = []

    async def __call__(self, app: object, config: Config, **_: Any) -> None:
        self.configs.append(config)


@pytest.fixture
def app_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``proxy_cli_app`` with an ``app`` in a fresh directory, and a clean
    environment (no TRIO_ASGI_* or FORWARDED_ALLOW_IPS from outside)."""
    import os
    import sys

    for name in list(os.environ):
        if name.startswith("TRIO_ASGI_") or name == "FORWARDED_ALLOW_IPS":
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "proxy_cli_app", raising=False)
    (tmp_path / "proxy_cli_app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    return str(tmp_path)


def run_cli(args: list[str], env: dict[str, str], app_dir: str) -> tuple[Any, FakeServe]:
    fake = FakeServe()
    runner = CliRunner()
    result = runner.invoke(
        _cli.cli,
        [*args, "--app-dir", app_dir, "proxy_cli_app:app"],
        env=env,
        obj=_cli.Runtime(serve=fake),
    )
    return result, fake


def test_cli_a_bad_forwarded_allow_ips_entry_is_a_usage_error_naming_it(app_dir: str) -> None:
    result, fake = run_cli(["--forwarded-allow-ips", "127.0.0.1, bogus"], {}, app_dir)
    assert result.exit_code == 2
    assert fake.configs == []
    assert result.stderr.splitlines()[-1] == (
        "Error: forwarded_allow_ips entry 'bogus' is not an IP address, a CIDR network "
        "(e.g. 10.0.0.0/8 or fd00::/8), 'unix' or '*'"
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1,::1"}),
        (["--no-proxy-headers"], {}, {"proxy_headers": False}),
        (
            ["--forwarded-allow-ips", "10.0.0.0/8,unix"],
            {},
            {"forwarded_allow_ips": "10.0.0.0/8,unix"},
        ),
        ([], {"FORWARDED_ALLOW_IPS": "*"}, {"forwarded_allow_ips": "*"}),
        (
            [],
            {"FORWARDED_ALLOW_IPS": "*", "TRIO_ASGI_FORWARDED_ALLOW_IPS": "10.0.0.1"},
            {"forwarded_allow_ips": "10.0.0.1"},
        ),
        (
            ["--forwarded-allow-ips", "::1"],
            {"FORWARDED_ALLOW_IPS": "*"},
            {"forwarded_allow_ips": "::1"},
        ),
        ([], {"TRIO_ASGI_PROXY_HEADERS": "false"}, {"proxy_headers": False}),
    ],
)
def test_cli_proxy_options_and_environment_variables_reach_config(
    app_dir: str, args: list[str], env: dict[str, str], expected: dict[str, Any]
) -> None:
    result, fake = run_cli(args, env, app_dir)
    assert result.exit_code == 0, result.output
    (config,) = fake.configs
    assert {name: getattr(config, name) for name in expected} == expected


def test_cli_a_bad_forwarded_allow_ips_variable_is_blamed_on_it(app_dir: str) -> None:
    result, fake = run_cli([], {"FORWARDED_ALLOW_IPS": "bogus"}, app_dir)
    assert result.exit_code == 2
    assert fake.configs == []
    assert "forwarded_allow_ips entry 'bogus'" in result.stderr


async def test_the_http_access_log_names_the_real_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_asgi.access")
    seen, _ = await get_scope(nursery, {"x-forwarded-for": "203.0.113.7"})
    assert seen["client"] == ["203.0.113.7", 0]
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert lines[0].startswith('203.0.113.7:0 - "GET / HTTP/1.1" 200 ')
