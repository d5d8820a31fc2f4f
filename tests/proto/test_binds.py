"""Tier 1: the bind parser and systemd's socket-activation variables (trio_asgi/_net/binds.py),
and the pasteable form of each listener address (``_logging.display_url``).

The accepted forms are gunicorn's and Hypercorn's (``HOST:PORT``, ``[IPV6]:PORT``,
``unix:PATH`` and gunicorn's ``unix://PATH``, ``tcp://HOST:PORT``, ``fd://N``; a bare host
is port 8000); systemd's rules are sd_listen_fds(3) and sd_listen_fds_with_names(3).
"""

from __future__ import annotations

import dataclasses

import pytest

from trio_asgi import ConfigError
from trio_asgi._logging import display_url, format_address
from trio_asgi._net.binds import (
    BIND_FORMS,
    SYSTEMD_VARIABLES,
    Bind,
    FDBind,
    TCPBind,
    UnixBind,
    parse_bind,
    systemd_listen_fds,
)
from trio_asgi._types import TCPAddress, UnixAddress

VALID: list[tuple[str, Bind]] = [
    ("127.0.0.1:8000", TCPBind("127.0.0.1", 8000)),
    ("0.0.0.0:0", TCPBind("0.0.0.0", 0)),
    ("localhost:65535", TCPBind("localhost", 65535)),
    ("example.com:80", TCPBind("example.com", 80)),
    ("localhost", TCPBind("localhost", 8000)),  # gunicorn's and Hypercorn's default port
    ("tcp://127.0.0.1:9000", TCPBind("127.0.0.1", 9000)),  # gunicorn
    ("[::1]:8000", TCPBind("::1", 8000)),
    ("[::]:0", TCPBind("::", 0)),
    ("[::1]", TCPBind("::1", 8000)),
    ("[fe80::1%eth0]:8000", TCPBind("fe80::1%eth0", 8000)),
    ("[::ffff:127.0.0.1]:80", TCPBind("::ffff:127.0.0.1", 80)),
    ("unix:/run/app.sock", UnixBind("/run/app.sock")),
    ("unix:app.sock", UnixBind("app.sock")),  # relative to the working directory
    ("unix:///run/app.sock", UnixBind("/run/app.sock")),  # gunicorn's unix://PATH
    ("unix://var/run/test.sock", UnixBind("var/run/test.sock")),  # as gunicorn reads it
    ("unix:/tmp/with:colon.sock", UnixBind("/tmp/with:colon.sock")),
    ("fd://3", FDBind(3)),
    ("fd://0", FDBind(0)),
    ("fd://12", FDBind(12)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_each_accepted_form(text: str, expected: Bind) -> None:
    assert parse_bind(text) == expected


INVALID: list[tuple[str, str]] = [
    ("", "the host is empty"),
    (":8000", "the host is empty"),
    ("127.0.0.1:", "the port must be a number from 0 to 65535, not ''"),
    ("127.0.0.1:http", "not 'http'"),
    ("127.0.0.1:65536", "not '65536'"),
    ("127.0.0.1:-1", "not '-1'"),
    ("127.0.0.1:\uff18\uff10", "not '\uff18\uff10'"),  # fullwidth 80: isdigit, not a port
    ("::1:8000", r"an IPv6 address goes in brackets, as in \[::1\]:8000"),
    ("::", "an IPv6 address goes in brackets"),
    ("[::1:8000", "the IPv6 address has no closing"),
    ("[127.0.0.1]:80", "'127.0.0.1' in brackets is not an IPv6 address"),
    ("[nonsense]:80", "'nonsense' in brackets is not an IPv6 address"),
    ("[::1]8000", "expected ':PORT' after the '\\]', not '8000'"),
    ("[::1]:99999", "not '99999'"),
    ("http://127.0.0.1:8000", r"http:// is not a bind \(no scheme but tcp://, unix: and fd://\)"),
    ("tcp://unix:/a", "the port must be a number"),
    ("local/host:80", "'local/host' is not a host name or address"),
    ("local host:80", "'local host' is not a host name or address"),
    ("unix:", "the Unix socket path is empty"),
    ("unix://", "the Unix socket path is empty"),
    ("unix:/tmp/a\0b", "the Unix socket path holds a NUL character"),
    ("fd://", "the descriptor must be a number, not ''"),
    ("fd://three", "the descriptor must be a number, not 'three'"),
    ("fd://-1", "the descriptor must be a number, not '-1'"),
]


@pytest.mark.parametrize(("text", "why"), INVALID, ids=[text or "empty" for text, _ in INVALID])
def test_each_malformed_bind_is_refused_with_what_is_wrong_and_the_forms(
    text: str, why: str
) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        parse_bind(text)
    message = str(caught.value)
    assert message.startswith(f"bind {text!r}: ")
    assert message.endswith(f"; use {BIND_FORMS}")
    assert isinstance(caught.value, ValueError)  # what a CLI's callback expects


def test_a_bind_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"bind must be a str \(HOST:PORT, .*\), not 8000"):
        parse_bind(8000)  # type: ignore[arg-type]


def test_binds_are_frozen_values() -> None:
    bind = parse_bind("[::1]:8000")
    with pytest.raises(dataclasses.FrozenInstanceError):
        bind.port = 1  # type: ignore[misc]
    assert {parse_bind("unix:/a"), parse_bind("unix:/a"), parse_bind("fd://3")} == {
        UnixBind("/a"),
        FDBind(3),
    }


# -- systemd socket activation (sd_listen_fds(3)) ------------------------------------------

PID = 4242


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"LISTEN_FDS": "2"}, []),  # no LISTEN_PID: not for us
        ({"LISTEN_PID": str(PID)}, []),
        ({"LISTEN_PID": "1", "LISTEN_FDS": "2"}, []),  # inherited from another process
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": "0"}, []),
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": "1"}, [(3, "unknown")]),
        (
            {"LISTEN_PID": str(PID), "LISTEN_FDS": "3"},
            [(3, "unknown"), (4, "unknown"), (5, "unknown")],
        ),
        (
            {"LISTEN_PID": str(PID), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"},
            [(3, "web"), (4, "admin")],
        ),
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"}, [(3, "web")]),
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": "0", "LISTEN_FDNAMES": ""}, []),
    ],
)
def test_systemd_listen_fds(environ: dict[str, str], expected: list[tuple[int, str]]) -> None:
    assert systemd_listen_fds(environ, PID) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LISTEN_PID": "me", "LISTEN_FDS": "1"}, "LISTEN_PID must be a number, not 'me'"),
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": "-1"}, "LISTEN_FDS must be a number, not '-1'"),
        ({"LISTEN_PID": str(PID), "LISTEN_FDS": ""}, "LISTEN_FDS must be a number, not ''"),
        (
            {"LISTEN_PID": str(PID), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web"},
            r"LISTEN_FDNAMES has 1 name\(s\) \('web'\), LISTEN_FDS says 2",
        ),
        (
            {"LISTEN_PID": str(PID), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"},
            r"LISTEN_FDNAMES has 2 name\(s\)",
        ),
    ],
)
def test_malformed_systemd_variables_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^systemd socket activation: {message}"):
        systemd_listen_fds(environ, PID)


def test_the_variables_to_unset_are_systemds_three() -> None:
    assert SYSTEMD_VARIABLES == ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


# -- the startup log's pasteable addresses -------------------------------------------------


@pytest.mark.parametrize(
    ("address", "scheme", "url"),
    [
        (TCPAddress("127.0.0.1", 8000), "http", "http://127.0.0.1:8000"),
        (TCPAddress("::1", 8000), "http", "http://[::1]:8000"),
        (TCPAddress("::", 8443), "https", "https://[::]:8443"),
        (TCPAddress("0.0.0.0", 80), "http", "http://0.0.0.0:80"),
        (UnixAddress("/run/app.sock"), "http", "unix:/run/app.sock"),
        (UnixAddress("/run/app.sock"), "https", "unix:/run/app.sock"),
    ],
)
def test_display_url(address: TCPAddress | UnixAddress, scheme: str, url: str) -> None:
    assert display_url(address, scheme) == url


def test_a_unix_address_is_the_asgi_server_form_and_unpacks_as_a_pair() -> None:
    address = UnixAddress("/run/app.sock")
    assert tuple(address) == ("/run/app.sock", None)  # scope["server"]: [path, None]
    host, port = address  # code written for TCPAddress keeps working
    assert (host, port) == ("/run/app.sock", None)
    assert format_address(address) == "unix:/run/app.sock"
    assert format_address(("::1", 80)) == "[::1]:80"
