"""Tier 1: the ``trio-asgi`` command in process, with click's CliRunner.

Help, version, option parsing and its mapping to Config, exit statuses and messages,
logging, and the signal handling. ``serve`` is replaced by small fakes, so these need no
sockets. The command end to end, in a subprocess: tests/integration/test_cli.py.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import logging
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner, Result

import trio_asgi
from trio_asgi import Config, ConfigError, LifespanFailure
from trio_asgi._cli import command as _cli

APPS_DIR = Path(__file__).parent.parent / "apps"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_STARTUP_FAILURE = 3


# ---------------------------------------------------------------------------------------------
# In process: CliRunner with a fake serve()
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRIO_ASGI_* from the outer environment; sys.path restored after --app-dir."""
    for name in list(os.environ):
        if name.startswith("TRIO_ASGI_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def app_module(tmp_path: Path) -> str:
    """A throwaway module in tmp_path (pass ``--app-dir tmp_path``) with an app and a factory."""
    name = f"cli_app_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                pass

            async def made(scope, receive, send):
                pass

            def make_app():
                return made
            """
        )
    )
    return name


class FakeServe:
    """Stands in for trio_asgi.serve: records its arguments, then runs ``behaviour``."""

    def __init__(self, behaviour: Callable[[Callable[[], Awaitable[Any]]], Awaitable[None]]):
        self.behaviour = behaviour
        self.calls: list[tuple[object, Config]] = []
        self.reload_triggers: list[Callable[[], Awaitable[Any]] | None] = []

    async def __call__(
        self,
        app: object,
        config: Config,
        *,
        shutdown_trigger: Callable[[], Awaitable[Any]],
        reload_trigger: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.calls.append((app, config))
        self.reload_triggers.append(reload_trigger)
        await self.behaviour(shutdown_trigger)

    @property
    def config(self) -> Config:
        assert len(self.calls) == 1
        return self.calls[0][1]


async def _return_at_once(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    pass


@pytest.fixture
def fake_serve() -> FakeServe:
    return FakeServe(_return_at_once)


def invoke(
    args: list[str], env: dict[str, str] | None = None, *, serve: FakeServe | None = None
) -> Result:
    """Run the command in process; with ``serve``, it calls that instead of trio_asgi.serve
    (the command's seam: a :class:`~trio_asgi._cli.command.Runtime` as click's context
    object)."""
    obj = None if serve is None else _cli.Runtime(serve=serve)
    return CliRunner().invoke(_cli.cli, args, env=env, obj=obj)


def test_help_lists_options_with_defaults_from_config() -> None:
    result = invoke(["--help"])
    assert result.exit_code == EXIT_OK
    assert result.output.startswith("Usage: trio-asgi [OPTIONS] APP\n")
    text = " ".join(result.output.split())  # undo the wrapping
    defaults = Config()
    for option, envvar, default in [
        ("--host TEXT", "TRIO_ASGI_HOST", defaults.host),
        ("--port INTEGER", "TRIO_ASGI_PORT", defaults.port),
        ("--lifespan [auto|on|off]", "TRIO_ASGI_LIFESPAN", defaults.lifespan),
        ("--graceful-timeout FLOAT", "TRIO_ASGI_GRACEFUL_TIMEOUT", defaults.graceful_timeout),
        ("--keep-alive-timeout FLOAT", "TRIO_ASGI_KEEP_ALIVE_TIMEOUT", defaults.keep_alive_timeout),
        ("--disconnect-timeout FLOAT", "TRIO_ASGI_DISCONNECT_TIMEOUT", defaults.disconnect_timeout),
        ("--log-level [critical|error|warning|info|debug]", "TRIO_ASGI_LOG_LEVEL", "info"),
        ("--http [auto|h11|httptools]", "TRIO_ASGI_HTTP", defaults.http),
        ("--ws [auto|none]", "TRIO_ASGI_WS", defaults.ws),
        ("--ws-max-size INTEGER", "TRIO_ASGI_WS_MAX_SIZE", defaults.ws_max_size),
        ("--ws-max-queue INTEGER", "TRIO_ASGI_WS_MAX_QUEUE", defaults.ws_max_queue),
        ("--ws-ping-interval FLOAT", "TRIO_ASGI_WS_PING_INTERVAL", defaults.ws_ping_interval),
        ("--ws-ping-timeout FLOAT", "TRIO_ASGI_WS_PING_TIMEOUT", defaults.ws_ping_timeout),
    ]:  # fmt: skip
        assert option in text
        assert f"[env var: {envvar}; default: {default}]" in text
    for flag in [
        "--root-path TEXT",
        "--access-log / --no-access-log",
        "--date-header / --no-date-header",
        "--server-header / --no-server-header",
        "--ws-per-message-deflate / --no-ws-per-message-deflate",
        "--factory",
        "--app-dir DIRECTORY",
        "--version",
    ]:
        assert flag in text
    assert "TRIO_ASGI_APP" in text
    # The boolean flags' defaults ("default: server-header") wrap at their hyphens.
    assert "[env var: TRIO_ASGI_WS_PER_MESSAGE_DEFLATE; default: ws-" in text


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == EXIT_OK
    assert result.output.startswith(f"trio-asgi {trio_asgi.__version__} (trio {trio.__version__}, ")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["Missing argument", "'APP'"]),
        (["--port", "http"], ["'--port'", "'http'", "integer"]),
        (["--lifespan", "sometimes"], ["'--lifespan'", "'sometimes'", "'auto', 'on', 'off'"]),
        (["--graceful-timeout", "soon"], ["'--graceful-timeout'", "'soon'", "float"]),
        (["--log-level", "loud"], ["'--log-level'", "'loud'", "'critical', 'error', "]),
        (["--no-such-option"], ["No such option", "--no-such-option"]),
        (["--ws", "always"], ["'--ws'", "'always'", "'auto', 'none'"]),
        (["--http", "h2"], ["'--http'", "'h2'", "'auto', 'h11', 'httptools'"]),
        (["--ws-max-size", "16MiB"], ["'--ws-max-size'", "'16MiB'", "integer"]),
        (["--ws-max-queue", "many"], ["'--ws-max-queue'", "'many'", "integer"]),
        (["--ws-ping-interval", "often"], ["'--ws-ping-interval'", "'often'", "float"]),
        (["--ws-ping-timeout", "20s"], ["'--ws-ping-timeout'", "'20s'", "float"]),
    ],
    ids=[
        "no-app",
        "port",
        "lifespan",
        "timeout",
        "log-level",
        "unknown-option",
        "ws",
        "http",
        "ws-max-size",
        "ws-max-queue",
        "ws-ping-interval",
        "ws-ping-timeout",
    ],
)
def test_bad_usage_exits_2(fake_serve: FakeServe, args: list[str], fragments: list[str]) -> None:
    """click's own checks; its exact wording varies between click versions."""
    result = invoke([*args, *(["mod:app"] if args else [])], serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: trio-asgi [OPTIONS] APP\n")
    error_line = result.stderr.splitlines()[-1]
    assert error_line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in error_line
    assert fake_serve.calls == []


def test_missing_app_dir_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = invoke(["--app-dir", str(missing), "mod:app"])
    assert result.exit_code == EXIT_USAGE
    error_line = result.stderr.splitlines()[-1]
    assert error_line.startswith("Error: Invalid value for '--app-dir': ")
    assert str(missing) in error_line


@pytest.mark.parametrize(
    ("args", "bad_config"),
    [
        (["--port", "70000"], {"port": 70000}),
        (["--port", "-1"], {"port": -1}),
        (["--host", ""], {"host": ""}),
        (["--root-path", "api/"], {"root_path": "api/"}),
        (["--graceful-timeout", "-1"], {"graceful_timeout": -1.0}),
        (["--keep-alive-timeout", "nan"], {"keep_alive_timeout": float("nan")}),
        (["--disconnect-timeout", "-0.5"], {"disconnect_timeout": -0.5}),
        (["--ws-max-size", "0"], {"ws_max_size": 0}),
        (["--ws-max-queue", "0"], {"ws_max_queue": 0}),
        (["--ws-ping-interval", "-1"], {"ws_ping_interval": -1.0}),
        (["--ws-ping-interval", "inf"], {"ws_ping_interval": float("inf")}),
        (["--ws-ping-timeout", "nan"], {"ws_ping_timeout": float("nan")}),
    ],
)
def test_values_config_rejects_exit_2_with_configs_message(
    fake_serve: FakeServe, app_module: str, args: list[str], bad_config: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**bad_config)
    # A bad value is reported before the app is imported, so a bad APP does not mask it.
    result = invoke([*args, "no_such_module_anywhere:app"], serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("Usage: trio-asgi [OPTIONS] APP\n")
    assert result.stderr.splitlines()[-1] == f"Error: {info.value}"
    assert fake_serve.calls == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], Config()),
        (
            ["--host", "0.0.0.0", "--port", "9000", "--root-path", "/api"],
            Config(host="0.0.0.0", port=9000, root_path="/api"),
        ),
        (["--lifespan", "off"], Config(lifespan="off")),
        (["--no-access-log"], Config(access_log=False)),
        (
            ["--graceful-timeout", "inf", "--keep-alive-timeout", "2.5"],
            Config(graceful_timeout=float("inf"), keep_alive_timeout=2.5),
        ),
        (["--disconnect-timeout", "0"], Config(disconnect_timeout=0.0)),
        (
            ["--no-date-header", "--no-server-header"],
            Config(date_header=False, server_header=False),
        ),
        (["--server-header", "--date-header", "--access-log"], Config()),
        (["--ws", "none"], Config(ws="none")),
        (["--ws", "auto"], Config(ws="auto")),
        (
            ["--ws-max-size", "1024", "--ws-max-queue", "4"],
            Config(ws_max_size=1024, ws_max_queue=4),
        ),
        (
            ["--ws-ping-interval", "0", "--ws-ping-timeout", "2.5"],
            Config(ws_ping_interval=0.0, ws_ping_timeout=2.5),
        ),
        (["--ws-ping-timeout", "inf"], Config(ws_ping_timeout=float("inf"))),
        (["--no-ws-per-message-deflate"], Config(ws_per_message_deflate=False)),
        (["--ws-per-message-deflate"], Config(ws_per_message_deflate=True)),
        (["--http", "h11"], Config(http="h11")),
        (["--http", "httptools"], Config(http="httptools")),
    ],
    ids=[
        "defaults",
        "address",
        "lifespan",
        "access-log",
        "timeouts",
        "zero",
        "headers",
        "on",
        "ws-none",
        "ws-auto",
        "ws-limits",
        "ws-pings",
        "ws-ping-timeout-inf",
        "ws-no-deflate",
        "ws-deflate",
        "http-h11",
        "http-httptools",
    ],
)
def test_options_map_to_config(
    fake_serve: FakeServe, app_module: str, tmp_path: Path, args: list[str], expected: Config
) -> None:
    result = invoke([*args, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == expected
    assert fake_serve.calls[0][0] is sys.modules[app_module].app


def test_environment_variables(fake_serve: FakeServe, app_module: str, tmp_path: Path) -> None:
    env = {
        "TRIO_ASGI_APP": f"{app_module}:make_app",
        "TRIO_ASGI_FACTORY": "1",
        "TRIO_ASGI_APP_DIR": str(tmp_path),
        "TRIO_ASGI_PORT": "9000",
        "TRIO_ASGI_HOST": "::1",
        "TRIO_ASGI_LIFESPAN": "on",
        "TRIO_ASGI_ACCESS_LOG": "false",
        "TRIO_ASGI_GRACEFUL_TIMEOUT": "1.5",
    }
    result = invoke([], env=env, serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(
        host="::1", port=9000, lifespan="on", access_log=False, graceful_timeout=1.5
    )
    assert fake_serve.calls[0][0] is sys.modules[app_module].made


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TRIO_ASGI_WS", "none", {"ws": "none"}),
        ("TRIO_ASGI_WS_MAX_SIZE", "2048", {"ws_max_size": 2048}),
        ("TRIO_ASGI_WS_MAX_QUEUE", "8", {"ws_max_queue": 8}),
        ("TRIO_ASGI_WS_PING_INTERVAL", "0", {"ws_ping_interval": 0.0}),
        ("TRIO_ASGI_WS_PING_TIMEOUT", "0.5", {"ws_ping_timeout": 0.5}),
        ("TRIO_ASGI_WS_PER_MESSAGE_DEFLATE", "false", {"ws_per_message_deflate": False}),
        ("TRIO_ASGI_WS_PER_MESSAGE_DEFLATE", "off", {"ws_per_message_deflate": False}),
    ],
)
def test_websocket_environment_variables(
    fake_serve: FakeServe,
    app_module: str,
    tmp_path: Path,
    name: str,
    value: str,
    expected: dict[str, Any],
) -> None:
    result = invoke(
        ["--app-dir", str(tmp_path), f"{app_module}:app"], env={name: value}, serve=fake_serve
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(**expected)


@pytest.mark.parametrize(
    ("name", "value", "bad_config"),
    [
        ("TRIO_ASGI_WS_MAX_SIZE", "0", {"ws_max_size": 0}),
        ("TRIO_ASGI_WS_MAX_QUEUE", "-3", {"ws_max_queue": -3}),
        ("TRIO_ASGI_WS_PING_INTERVAL", "inf", {"ws_ping_interval": float("inf")}),
    ],
)
def test_websocket_environment_variable_config_rejects_exits_2(
    fake_serve: FakeServe, name: str, value: str, bad_config: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**bad_config)
    result = invoke(["mod:app"], env={name: value}, serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.splitlines()[-1] == f"Error: {info.value}"
    assert fake_serve.calls == []


def test_websocket_option_beats_environment_variable(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(
        ["--ws-max-queue", "2", "--app-dir", str(tmp_path), f"{app_module}:app"],
        env={"TRIO_ASGI_WS_MAX_QUEUE": "64", "TRIO_ASGI_WS": "none"},
        serve=fake_serve,
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(ws="none", ws_max_queue=2)


# -- the hardening options: timeouts and limits ---------------------------------------------

#: (option, environment variable, Config field, a value as typed, the value Config gets)
HARDENING_OPTIONS = [
    ("--request-header-timeout", "TRIO_ASGI_REQUEST_HEADER_TIMEOUT",
     "request_header_timeout", "2.5", 2.5),
    ("--body-read-timeout", "TRIO_ASGI_BODY_READ_TIMEOUT", "body_read_timeout", "inf",
     float("inf")),
    ("--lifespan-startup-timeout", "TRIO_ASGI_LIFESPAN_STARTUP_TIMEOUT",
     "lifespan_startup_timeout", "0", 0.0),
    ("--lifespan-shutdown-timeout", "TRIO_ASGI_LIFESPAN_SHUTDOWN_TIMEOUT",
     "lifespan_shutdown_timeout", "7", 7.0),
    ("--max-header-size", "TRIO_ASGI_MAX_HEADER_SIZE", "max_header_size", "1024", 1024),
    ("--max-request-body-size", "TRIO_ASGI_MAX_REQUEST_BODY_SIZE", "max_request_body_size",
     "1048576", 1048576),
    ("--max-connections", "TRIO_ASGI_MAX_CONNECTIONS", "max_connections", "1", 1),
    ("--max-requests-per-connection", "TRIO_ASGI_MAX_REQUESTS_PER_CONNECTION",
     "max_requests_per_connection", "100", 100),
    ("--backlog", "TRIO_ASGI_BACKLOG", "backlog", "16", 16),
]  # fmt: skip
HARDENING_IDS = [option.removeprefix("--") for option, *_ in HARDENING_OPTIONS]


def test_help_lists_the_hardening_options_with_defaults_from_config() -> None:
    result = invoke(["--help"])
    assert result.exit_code == EXIT_OK
    text = " ".join(result.output.split())  # undo the wrapping
    defaults = Config()
    for option, envvar, field, _, _ in HARDENING_OPTIONS:
        default = getattr(defaults, field)
        shown = "(no limit)" if default is None else default
        metavar = "FLOAT" if field.endswith("_timeout") else "INTEGER"
        assert f"{option} {metavar}" in text
        assert f"[env var: {envvar}; default: {shown}]" in text
    # Units are in the help text: seconds for the timeouts, bytes for the sizes.
    assert text.count("Seconds ") >= 4 + 5  # 5 older timeouts and intervals
    assert "Bytes a request head" in text
    assert "Bytes a request body" in text


def test_hardening_options_default_to_configs_defaults(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    config = fake_serve.config
    for field in dataclasses.fields(Config):
        assert getattr(config, field.name) == field.default, field.name
    # No option given: no body limit, no connection limit, no per-connection request limit.
    assert config.max_request_body_size is None
    assert config.max_connections is None
    assert config.max_requests_per_connection is None


@pytest.mark.parametrize(
    ("option", "envvar", "field", "typed", "value"), HARDENING_OPTIONS, ids=HARDENING_IDS
)
def test_hardening_option_reaches_config(
    fake_serve: FakeServe,
    app_module: str,
    tmp_path: Path,
    option: str,
    envvar: str,
    field: str,
    typed: str,
    value: float,
) -> None:
    result = invoke(
        [option, typed, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(**{field: value})


@pytest.mark.parametrize(
    ("option", "envvar", "field", "typed", "value"), HARDENING_OPTIONS, ids=HARDENING_IDS
)
def test_hardening_environment_variable_reaches_config(
    fake_serve: FakeServe,
    app_module: str,
    tmp_path: Path,
    option: str,
    envvar: str,
    field: str,
    typed: str,
    value: float,
) -> None:
    result = invoke(
        ["--app-dir", str(tmp_path), f"{app_module}:app"], env={envvar: typed}, serve=fake_serve
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(**{field: value})


def test_hardening_options_together(fake_serve: FakeServe, app_module: str, tmp_path: Path) -> None:
    args = [arg for option, _, _, typed, _ in HARDENING_OPTIONS for arg in (option, typed)]
    result = invoke([*args, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(
        **{field: value for _, _, field, _, value in HARDENING_OPTIONS}
    )


def test_hardening_option_beats_environment_variable(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(
        ["--max-header-size", "4096", "--app-dir", str(tmp_path), f"{app_module}:app"],
        env={"TRIO_ASGI_MAX_HEADER_SIZE": "8192", "TRIO_ASGI_BODY_READ_TIMEOUT": "5"},
        serve=fake_serve,
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(max_header_size=4096, body_read_timeout=5.0)


#: (option, a value Config rejects as typed, the same value as Config gets it)
HARDENING_BAD_VALUES = [
    ("--request-header-timeout", "-1", -1.0),
    ("--request-header-timeout", "nan", float("nan")),
    ("--body-read-timeout", "-0.5", -0.5),
    ("--lifespan-startup-timeout", "nan", float("nan")),
    ("--lifespan-shutdown-timeout", "-2", -2.0),
    ("--max-header-size", "1023", 1023),
    ("--max-header-size", "0", 0),
    ("--max-request-body-size", "0", 0),
    ("--max-request-body-size", "-1", -1),
    ("--max-connections", "0", 0),
    ("--max-requests-per-connection", "0", 0),
    ("--backlog", "0", 0),
]


def _field_of(option: str) -> tuple[str, str]:
    """The Config field and environment variable of a hardening ``option``."""
    for known, envvar, field, _, _ in HARDENING_OPTIONS:
        if known == option:
            return field, envvar
    raise AssertionError(f"not a hardening option: {option}")


@pytest.mark.parametrize(
    ("option", "typed", "value"),
    HARDENING_BAD_VALUES,
    ids=[f"{option.removeprefix('--')}={typed}" for option, typed, _ in HARDENING_BAD_VALUES],
)
@pytest.mark.parametrize("source", ["option", "envvar"])
def test_hardening_value_config_rejects_exits_2_with_configs_message(
    fake_serve: FakeServe, option: str, typed: str, value: float, source: str
) -> None:
    field, envvar = _field_of(option)
    with pytest.raises(ConfigError) as info:
        Config(**{field: value})
    assert field in str(info.value)
    if source == "option":
        result = invoke([option, typed, "no_such_module_anywhere:app"], serve=fake_serve)
    else:
        result = invoke(["no_such_module_anywhere:app"], env={envvar: typed}, serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: trio-asgi [OPTIONS] APP\n")
    assert result.stderr.splitlines()[-1] == f"Error: {info.value}"
    assert fake_serve.calls == []


@pytest.mark.parametrize(
    ("option", "typed", "kind"),
    [
        ("--request-header-timeout", "10s", "float"),
        ("--body-read-timeout", "a minute", "float"),
        ("--lifespan-startup-timeout", "1m", "float"),
        ("--lifespan-shutdown-timeout", "soon", "float"),
        ("--max-header-size", "16KiB", "integer"),
        ("--max-request-body-size", "none", "integer"),
        ("--max-connections", "1.5", "integer"),
        ("--max-requests-per-connection", "inf", "integer"),
        ("--backlog", "lots", "integer"),
    ],
    ids=HARDENING_IDS,
)
@pytest.mark.parametrize("source", ["option", "envvar"])
def test_hardening_value_of_the_wrong_type_exits_2(
    fake_serve: FakeServe, option: str, typed: str, kind: str, source: str
) -> None:
    """click's own type check; its exact wording varies between click versions."""
    _, envvar = _field_of(option)
    if source == "option":
        result = invoke([option, typed, "mod:app"], serve=fake_serve)
    else:
        result = invoke(["mod:app"], env={envvar: typed}, serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    error_line = result.stderr.splitlines()[-1]
    named = f"'{option}'" if source == "option" else f"environment variable '{envvar}'"
    assert error_line.startswith(f"Error: Invalid value for {named}: ")
    assert kind in error_line
    assert fake_serve.calls == []


def test_option_beats_environment_variable(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(
        ["--port", "9001", "--app-dir", str(tmp_path), f"{app_module}:app"],
        env={"TRIO_ASGI_PORT": "9000"},
        serve=fake_serve,
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config.port == 9001


@pytest.mark.parametrize(
    ("name", "value"),
    [("TRIO_ASGI_PORT", "eighty"), ("TRIO_ASGI_LOG_LEVEL", "loud"), ("TRIO_ASGI_WS", "always")],
)
def test_bad_environment_variable_exits_2_naming_the_variable(
    fake_serve: FakeServe, name: str, value: str
) -> None:
    """The user set the variable, not the option: the error names what to fix."""
    result = invoke(["mod:app"], env={name: value}, serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    error_line = result.stderr.splitlines()[-1]
    assert error_line.startswith(f"Error: Invalid value for environment variable '{name}': ")
    assert f"'{value}'" in error_line
    assert "'--" not in error_line
    assert fake_serve.calls == []


def test_bad_option_beside_a_good_environment_variable_names_the_option(
    fake_serve: FakeServe,
) -> None:
    result = invoke(["--port", "eighty", "mod:app"], env={"TRIO_ASGI_WS": "none"}, serve=fake_serve)
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '--port': ")


def test_dash_h_is_help() -> None:
    result = invoke(["-h"])
    assert result.exit_code == EXIT_OK
    assert result.output == invoke(["--help"]).output
    assert "-h, --help" in result.output


@pytest.mark.parametrize(
    ("app", "suggestion"),
    [
        ("examples/hello.py", "--app-dir examples hello:app"),
        ("examples/hello.py:application", "--app-dir examples hello:application"),
        ("hello.py", "hello:app"),
        ("./src/my app/main.py", "--app-dir 'src/my app' main:app"),
        ("examples/hello", "--app-dir examples hello:app"),
    ],
)
def test_app_given_as_a_path_suggests_app_dir(
    fake_serve: FakeServe, app: str, suggestion: str
) -> None:
    result = invoke([app], serve=fake_serve)
    assert result.exit_code == EXIT_FAILURE
    [line] = result.stderr.splitlines()
    file = app.partition(":")[0]
    assert line.endswith(f". To serve the file {file}: trio-asgi {suggestion}")
    assert fake_serve.calls == []


def test_app_not_a_path_gets_no_suggestion(fake_serve: FakeServe) -> None:
    result = invoke(["no_colon"], serve=fake_serve)
    assert "To serve the file" not in result.stderr


@pytest.fixture
def failing_factory(tmp_path: Path) -> str:
    name = f"cli_factory_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def make_app():
                connect_to_the_database()

            def connect_to_the_database():
                raise RuntimeError("no database")
            """
        )
    )
    return f"{name}:make_app"


def test_failing_factory_shows_its_traceback_at_debug(
    fake_serve: FakeServe, failing_factory: str, tmp_path: Path
) -> None:
    args = ["--log-level", "debug", "--factory", "--app-dir", str(tmp_path), failing_factory]
    result = invoke(args, serve=fake_serve)
    assert result.exit_code == EXIT_FAILURE
    lines = result.stderr.splitlines()
    assert lines[0] == f"DEBUG:    Could not load the app {failing_factory!r}"
    assert "Traceback (most recent call last):" in lines
    assert '    raise RuntimeError("no database")' in lines  # the factory's own frame
    assert "RuntimeError: no database" in lines
    assert lines[-1] == (
        f"Error: calling factory {failing_factory!r} failed: RuntimeError: no database"
    )


def test_failing_factory_is_one_line_at_info(
    fake_serve: FakeServe, failing_factory: str, tmp_path: Path
) -> None:
    result = invoke(["--factory", "--app-dir", str(tmp_path), failing_factory], serve=fake_serve)
    assert result.stderr == (
        f"Error: calling factory {failing_factory!r} failed: RuntimeError: no database\n"
    )


def test_factory_option(fake_serve: FakeServe, app_module: str, tmp_path: Path) -> None:
    result = invoke(
        ["--factory", "--app-dir", str(tmp_path), f"{app_module}:make_app"], serve=fake_serve
    )
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.calls[0][0] is sys.modules[app_module].made


def test_app_dir_goes_first_on_sys_path(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert sys.path[0] == str(tmp_path)


@pytest.mark.parametrize(
    ("app", "factory", "message"),
    [
        ("no_colon", False, 'import string must be "<module>:<attribute>", '
         "e.g. \"myproject.main:app\", not 'no_colon'"),
        ("cli_no_such_module:app", False, "could not import module 'cli_no_such_module'"),
        ("{module}:nope", False, "module '{module}' has no attribute 'nope'"),
        ("{module}:app", True, "calling factory '{module}:app' failed: TypeError: "
         "app() missing 3 required positional arguments: 'scope', 'receive', and 'send'"),
    ],
    ids=["malformed", "no-module", "no-attribute", "factory-fails"],
)  # fmt: skip
def test_import_errors_exit_1_with_one_line(
    fake_serve: FakeServe,
    app_module: str,
    tmp_path: Path,
    app: str,
    factory: bool,
    message: str,
) -> None:
    args = ["--app-dir", str(tmp_path), app.format(module=app_module)]
    result = invoke(["--factory", *args] if factory else args, serve=fake_serve)
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr == f"Error: {message.format(module=app_module)}\n"
    assert result.stdout == ""
    assert fake_serve.calls == []


def test_error_inside_the_users_module_is_not_hidden(fake_serve: FakeServe) -> None:
    result = invoke(["--app-dir", str(APPS_DIR), "broken_import:app"], serve=fake_serve)
    assert result.exit_code == EXIT_FAILURE
    assert isinstance(result.exception, ModuleNotFoundError)
    assert result.exception.name == "trio_asgi_test_dependency_that_is_not_installed"
    assert fake_serve.calls == []


async def _fail_startup(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    raise LifespanFailure("database is unreachable")


def test_lifespan_failure_exits_3(fake_serve: FakeServe, app_module: str, tmp_path: Path) -> None:
    fake_serve.behaviour = _fail_startup
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_STARTUP_FAILURE
    assert result.stderr == "Error: application startup failed: database is unreachable\n"


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1:8000"), ("::1", "[::1]:8000"), ("localhost", "localhost:8000")],
)
def test_bind_failure_exits_1_naming_the_address(
    fake_serve: FakeServe, app_module: str, tmp_path: Path, host: str, shown: str
) -> None:
    error = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))

    async def fail_to_bind(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
        raise error

    fake_serve.behaviour = fail_to_bind
    result = invoke(
        ["--host", host, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve
    )
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr == f"Error: could not listen on {shown}: {error}\n"


async def _signal_then_wait(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    signal.raise_signal(signal.SIGTERM)
    await shutdown_trigger()


async def _ignore_first_signal(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    signal.raise_signal(signal.SIGINT)
    await shutdown_trigger()
    signal.raise_signal(signal.SIGINT)
    await trio.sleep_forever()  # a shutdown that never ends on its own


def test_first_signal_triggers_graceful_shutdown_exit_0(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    fake_serve.behaviour = _signal_then_wait
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK
    assert result.stderr == ("INFO:     Shutting down gracefully (press CTRL+C again to force)\n")


def test_second_signal_forces_shutdown_exit_1(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    fake_serve.behaviour = _ignore_first_signal
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr == (
        "INFO:     Shutting down gracefully (press CTRL+C again to force)\n"
        "WARNING:  Forced shutdown\n"
    )


async def _log_some_lines(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    logging.getLogger("trio_asgi.error").debug("a debug line")
    logging.getLogger("trio_asgi.error").info("an info line")
    logging.getLogger("trio_asgi.access").info('127.0.0.1:5000 - "GET / HTTP/1.1" 200')
    logging.getLogger("trio_asgi.error").warning("a warning line")
    logging.getLogger("trio_asgi.error").error("an error line")


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", ["DEBUG:    a debug line", "INFO:     an info line",
                   'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200',
                   "WARNING:  a warning line", "ERROR:    an error line"]),
        ("info", ["INFO:     an info line", 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200',
                  "WARNING:  a warning line", "ERROR:    an error line"]),
        ("WARNING", ["WARNING:  a warning line", "ERROR:    an error line"]),
        ("critical", []),
    ],
)  # fmt: skip
def test_logging_goes_to_stderr_at_the_chosen_level(
    fake_serve: FakeServe, app_module: str, tmp_path: Path, level: str, expected: list[str]
) -> None:
    fake_serve.behaviour = _log_some_lines
    logger = logging.getLogger("trio_asgi")
    before = (list(logger.handlers), logger.level, logger.propagate)
    result = invoke(
        ["--log-level", level, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve
    )
    assert result.exit_code == EXIT_OK, result.output
    assert result.stderr.splitlines() == expected
    assert result.stdout == ""
    # The command leaves the logger as it found it.
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_gc_freeze_runs_after_the_app_is_imported_and_before_serving(
    fake_serve: FakeServe, app_module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    monkeypatch.setattr(
        gc,
        "freeze",
        lambda: events.append("freeze" if app_module in sys.modules else "freeze-too-early"),
    )

    async def record_serving(shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
        events.append("serve")

    fake_serve.behaviour = record_serving
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert events == ["freeze", "serve"]


# ---------------------------------------------------------------------------------------------
# The server options are generated from Config's field metadata
# ---------------------------------------------------------------------------------------------


def test_every_server_option_at_once_reaches_config(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    args = [
        *("--host", "::1", "--port", "0", "--root-path", "/api", "--lifespan", "off"),
        *("--no-access-log", "--graceful-timeout", "inf", "--keep-alive-timeout", "1.5"),
        *("--disconnect-timeout", "0", "--no-date-header", "--no-server-header"),
        *("--http", "h11", "--ws", "none", "--ws-max-size", "4096", "--ws-max-queue", "2"),
        *("--ws-ping-interval", "0", "--ws-ping-timeout", "inf", "--no-ws-per-message-deflate"),
        *("--request-header-timeout", "2", "--body-read-timeout", "3"),
        *("--lifespan-startup-timeout", "4", "--lifespan-shutdown-timeout", "5"),
        *("--max-header-size", "2048", "--max-request-body-size", "100"),
        *("--max-connections", "7", "--max-requests-per-connection", "8", "--backlog", "9"),
    ]
    result = invoke([*args, "--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(
        host="::1",
        port=0,
        root_path="/api",
        lifespan="off",
        access_log=False,
        graceful_timeout=float("inf"),
        keep_alive_timeout=1.5,
        disconnect_timeout=0.0,
        date_header=False,
        server_header=False,
        http="h11",
        ws="none",
        ws_max_size=4096,
        ws_max_queue=2,
        ws_ping_interval=0.0,
        ws_ping_timeout=float("inf"),
        ws_per_message_deflate=False,
        request_header_timeout=2.0,
        body_read_timeout=3.0,
        lifespan_startup_timeout=4.0,
        lifespan_shutdown_timeout=5.0,
        max_header_size=2048,
        max_request_body_size=100,
        max_connections=7,
        max_requests_per_connection=8,
        backlog=9,
    )


def test_server_options_are_exactly_the_config_fields_with_cli_help() -> None:
    from trio_asgi._option import option_of

    with_help = {
        field.name: (option_of(field).cli_help, field.default)
        for field in dataclasses.fields(Config)
        if option_of(field).cli_help is not None
    }
    hand_written = {"app", "factory", "app_dir", "log_level", "version"}
    generated = {
        param.name: (getattr(param, "help", None), param.default)
        for param in _cli.cli.params
        if param.name not in hand_written
    }
    assert generated == with_help
    assert "body_buffer_size" not in generated  # Config only


def test_config_only_field_has_no_option(fake_serve: FakeServe) -> None:
    result = invoke(["--body-buffer-size", "2048", "m:app"], serve=fake_serve)
    assert result.exit_code == EXIT_USAGE
    assert "No such option '--body-buffer-size'" in result.output
    assert fake_serve.calls == []


def test_without_a_runtime_the_command_serves_with_trio_asgi_serve() -> None:
    """The seam the tests above use (click's context object) defaults to the real server."""
    assert _cli.Runtime().serve is trio_asgi.serve


def test_tls_options_map_to_config(fake_serve: FakeServe, app_module: str, tmp_path: Path) -> None:
    args = [
        "--ssl-certfile",
        "cert.pem",
        "--ssl-keyfile",
        "key.pem",
        "--ssl-ca-certs",
        "ca.pem",
        "--ssl-cert-reqs",
        "optional",
        "--ssl-ciphers",
        "ECDHE+AESGCM",
        "--tls-handshake-timeout",
        "2.5",
    ]
    env = {"TRIO_ASGI_SSL_KEYFILE_PASSWORD": "secret"}
    result = invoke([*args, "--app-dir", str(tmp_path), f"{app_module}:app"], env, serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.config == Config(
        ssl_certfile="cert.pem",
        ssl_keyfile="key.pem",
        ssl_keyfile_password="secret",
        ssl_ca_certs="ca.pem",
        ssl_cert_reqs="optional",
        ssl_ciphers="ECDHE+AESGCM",
        tls_handshake_timeout=2.5,
    )
    # With TLS files, the command hands serve() a reload trigger: SIGHUP.
    assert fake_serve.reload_triggers[0] is not None


def test_without_tls_files_sighup_is_not_taken(
    fake_serve: FakeServe, app_module: str, tmp_path: Path
) -> None:
    result = invoke(["--app-dir", str(tmp_path), f"{app_module}:app"], serve=fake_serve)
    assert result.exit_code == EXIT_OK, result.output
    assert fake_serve.reload_triggers == [None]


def test_a_tls_file_that_cannot_be_read_exits_2_naming_it(app_module: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = invoke(
        ["--ssl-certfile", str(missing), "--app-dir", str(tmp_path), f"{app_module}:app"]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"ssl_certfile '{missing}' cannot be read: No such file or directory" in result.output
    assert "Traceback" not in result.output
