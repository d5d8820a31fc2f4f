"""Tier 1: ``Config`` defaults, immutability and validation."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from typing import Any

import pytest

from trio_asgi import Config, ConfigError, TrioASGIError
from trio_asgi._net.binds import FDBind, TCPBind, UnixBind, config_binds

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 8000,
    "bind": (),
    "uds": None,
    "fd": None,
    "uds_permissions": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_keyfile_password": None,
    "ssl_ca_certs": None,
    "ssl_cert_reqs": "none",
    "ssl_ciphers": None,
    "ssl_context": None,
    "tls_handshake_timeout": 10.0,
    "root_path": "",
    "proxy_headers": True,
    "forwarded_allow_ips": "127.0.0.1,::1",
    "proxy_protocol": False,
    "lifespan": "auto",
    "interface": "auto",
    "loop": "trio",
    "wsgi_threads": 10,
    "request_timeout": math.inf,
    "access_log": True,
    "keep_alive_timeout": 5.0,
    "graceful_timeout": 10.0,
    "disconnect_timeout": 3.0,
    "date_header": True,
    "server_header": True,
    "body_buffer_size": 65536,
    "http": "auto",
    "ws": "auto",
    "ws_max_size": 16 * 1024 * 1024,
    "ws_max_queue": 32,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": True,
    "request_header_timeout": 10.0,
    "body_read_timeout": 60.0,
    "lifespan_startup_timeout": 60.0,
    "lifespan_shutdown_timeout": 30.0,
    "max_header_size": 16384,
    "max_request_body_size": None,
    "max_connections": None,
    "max_requests_per_connection": None,
    "backlog": 2048,
}


def test_defaults() -> None:
    assert dataclasses.asdict(Config()) == DEFAULTS


def test_every_field_has_a_documented_default() -> None:
    assert {field.name for field in dataclasses.fields(Config)} == set(DEFAULTS)


def test_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 9000  # type: ignore[misc]
    assert config.port == 8000


def test_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Config("0.0.0.0")  # type: ignore[misc]


def test_is_hashable_and_compares_by_value() -> None:
    assert Config(port=1) == Config(port=1)
    assert Config(port=1) != Config(port=2)
    assert hash(Config(port=1)) == hash(Config(port=1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", "0.0.0.0"),
        ("host", "::"),
        ("host", "localhost"),
        ("port", 0),
        ("port", 65535),
        ("root_path", ""),
        ("root_path", "/api"),
        ("root_path", "/api/v1"),
        ("proxy_headers", False),
        ("forwarded_allow_ips", "*"),
        ("forwarded_allow_ips", ""),
        ("forwarded_allow_ips", "10.0.0.0/8, fd00::/8, unix, 192.0.2.1"),
        ("proxy_protocol", True),
        ("lifespan", "on"),
        ("lifespan", "off"),
        ("interface", "asgi2"),
        ("interface", "wsgi"),
        ("wsgi_threads", 1),
        ("request_timeout", 0.5),
        ("access_log", False),
        ("keep_alive_timeout", 0),
        ("keep_alive_timeout", 0.5),
        ("keep_alive_timeout", math.inf),
        ("graceful_timeout", 0),
        ("graceful_timeout", math.inf),
        ("disconnect_timeout", 0.0),
        ("disconnect_timeout", math.inf),
        ("date_header", False),
        ("server_header", False),
        ("body_buffer_size", 1024),
        ("body_buffer_size", 2**24),
    ],
)
def test_accepts_valid_values(field: str, value: Any) -> None:
    config = Config(**{field: value})
    assert getattr(config, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", ""),
        ("host", None),
        ("host", b"127.0.0.1"),
        ("port", -1),
        ("port", 65536),
        ("port", "80"),
        ("port", 80.0),
        ("port", True),
        ("port", None),
        ("root_path", "api"),
        ("root_path", "/api/"),
        ("root_path", "/"),
        ("root_path", None),
        ("root_path", b"/api"),
        ("proxy_headers", "yes"),
        ("proxy_headers", None),
        ("proxy_protocol", "yes"),
        ("forwarded_allow_ips", "bogus"),
        ("forwarded_allow_ips", "10.0.0.1/8"),
        ("forwarded_allow_ips", None),
        ("forwarded_allow_ips", b"127.0.0.1"),
        ("lifespan", "maybe"),
        ("lifespan", "ON"),
        ("lifespan", None),
        ("lifespan", True),
        ("access_log", 1),
        ("access_log", "yes"),
        ("access_log", None),
        ("date_header", 0),
        ("date_header", "false"),
        ("server_header", 1),
        ("server_header", None),
        ("keep_alive_timeout", -1),
        ("keep_alive_timeout", -0.001),
        ("keep_alive_timeout", math.nan),
        ("keep_alive_timeout", -math.inf),
        ("keep_alive_timeout", "5"),
        ("keep_alive_timeout", True),
        ("keep_alive_timeout", None),
        ("graceful_timeout", -1),
        ("graceful_timeout", math.nan),
        ("graceful_timeout", False),
        ("disconnect_timeout", -1.0),
        ("disconnect_timeout", math.nan),
        ("disconnect_timeout", "3"),
        ("body_buffer_size", 10),
        ("body_buffer_size", 1023),
        ("body_buffer_size", 0),
        ("body_buffer_size", -1),
        ("body_buffer_size", 4096.0),
        ("body_buffer_size", True),
        ("body_buffer_size", "65536"),
    ],
)
def test_rejects_invalid_values_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        Config(**{field: value})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TrioASGIError)
    assert repr(value) in str(info.value)


def test_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="port"):
        dataclasses.replace(Config(), port=-1)
    assert dataclasses.replace(Config(), port=0).port == 0


def test_error_message_says_what_the_value_should_be() -> None:
    with pytest.raises(ConfigError) as info:
        Config(port=70000)
    assert str(info.value) == "port must be an int from 0 to 65535, not 70000"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bind": "127.0.0.1:80"}, "bind must be a tuple of str, not '127.0.0.1:80'"),
        ({"bind": [8000]}, "bind must be a tuple of str, not [8000]"),
        ({"uds": ""}, "uds must be a path (a non-empty str) or None, not ''"),
        ({"fd": -1}, "fd must be an int of at least 0 (a descriptor) or None"),
        ({"fd": True}, "fd must be an int of at least 0"),
        ({"uds_permissions": 0o1777}, "uds_permissions must be a mode from 0 to 0o777, not 1023"),
        ({"uds_permissions": "660"}, "uds_permissions must be a mode from 0 to 0o777"),
    ],
)
def test_bad_listening_settings_name_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config(**settings)


def test_bind_given_as_a_list_is_kept_as_a_tuple() -> None:
    config = Config(bind=["unix:/run/app.sock", "[::1]:0"])  # type: ignore[arg-type]
    assert config.bind == ("unix:/run/app.sock", "[::1]:0")
    assert hash(config) == hash(Config(bind=("unix:/run/app.sock", "[::1]:0")))


@pytest.mark.parametrize("mode", ["auto", "h11", "httptools"])
def test_http_parser_modes(mode: str) -> None:
    assert Config(http=mode).http == mode  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"interface": "asgi"}, "interface must be one of 'auto', 'asgi3', 'asgi2', 'wsgi'"),
        ({"wsgi_threads": 0}, "wsgi_threads must be an int of at least 1 (threads)"),
        ({"request_timeout": -1}, "request_timeout must be a number of seconds >= 0"),
    ],
)
def test_bad_app_interface_settings_name_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config(**settings)


@pytest.mark.parametrize("mode", ["", "H11", "fast", None, 1])
def test_bad_http_parser_mode_names_the_field(mode: object) -> None:
    with pytest.raises(ConfigError, match="http must be one of 'auto', 'h11', 'httptools'"):
        Config(http=mode)  # type: ignore[arg-type]


def test_httptools_without_httptools_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # what a missing package looks like
    with pytest.raises(ConfigError, match=r"pip install httptools \(or use http='h11'\)"):
        Config(http="httptools")
    assert Config(http="auto").http == "auto"  # auto falls back to h11 instead


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, [TCPBind("127.0.0.1", 8000)]),
        ({"host": "::1", "port": 0}, [TCPBind("::1", 0)]),
        # Any of bind, uds and fd replaces host and port (as gunicorn's --bind does).
        ({"host": "0.0.0.0", "bind": ["[::1]:9000"]}, [TCPBind("::1", 9000)]),
        ({"port": 9000, "uds": "/run/app.sock"}, [UnixBind("/run/app.sock")]),
        ({"fd": 3}, [FDBind(3)]),
        (
            {"bind": ["unix:/a.sock", "127.0.0.1:0"], "uds": "/b.sock", "fd": 4},
            [UnixBind("/a.sock"), TCPBind("127.0.0.1", 0), UnixBind("/b.sock"), FDBind(4)],
        ),
    ],
)
def test_config_binds_in_order_or_host_and_port(
    settings: dict[str, Any], expected: list[object]
) -> None:
    config = Config(**settings)
    assert config_binds(config.bind, config.uds, config.fd, config.host, config.port) == expected


def test_config_binds_refuses_a_bad_bind_and_a_nul_in_uds() -> None:
    with pytest.raises(ConfigError, match=re.escape("bind 'nowhere:port': the port must be")):
        config_binds(("nowhere:port",), None, None, "127.0.0.1", 8000)
    with pytest.raises(ConfigError, match="uds 'a\\\\x00b': the Unix socket path holds a NUL"):
        config_binds((), "a\0b", None, "127.0.0.1", 8000)
