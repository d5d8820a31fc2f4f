"""The ``trio-asgi`` command: a thin click skin over :class:`~trio_asgi.Config` and
:func:`~trio_asgi.serve`.

Rules of this module:

* The server options are generated, in one loop (:func:`_config_options`), from the
  :class:`~trio_asgi.Config` fields and their metadata (``trio_asgi._option.Option``): each
  maps once to the field of the same name, takes its type and default from the field and its
  help text from the metadata, so they live in one place (which also renders the option table
  of docs/configuration.md), and the parsed values become ``Config(**settings)`` as they are.
  ``--app-dir``, ``--factory``, ``--log-level``, ``--version`` and APP are written here by
  hand: they are the command's, not the server's. Every option can also
  come from an environment variable, ``TRIO_ASGI_`` + its name (``TRIO_ASGI_PORT=9000``); the
  app from ``TRIO_ASGI_APP``.
* Only this module configures logging (a stderr handler on the ``trio_asgi`` logger, for the
  duration of the command), puts ``--app-dir`` on ``sys.path``, imports the app and chooses
  exit statuses. Library errors are turned into one-line messages here, never tracebacks.
* What the command serves with is a seam, not a module global: click's context object, when
  it is a :class:`Runtime` (``CliRunner().invoke(cli, args, obj=Runtime(serve=fake))``), says
  which ``serve`` to call; without one the command calls :func:`~trio_asgi.serve`. Tests run
  the whole command this way without sockets; nothing else sets it.

Exit statuses::

    0  graceful shutdown completed (after SIGINT or SIGTERM)
    1  the app could not be imported or fits no interface (AppImportError), the server could
       not listen (OSError; a ListenError names the bind: a Unix path in use, a descriptor
       that is no listening socket), or a second signal forced the shutdown
    2  bad usage: an unknown option, a bad value, or a value Config rejects (ConfigError),
       a --bind among them
    3  the app's lifespan startup failed (LifespanFailure), as uvicorn's STARTUP_FAILURE;
       also a signal that arrives before startup completed (nothing was served)
    4  served and shut down, but the app's lifespan shutdown failed (LifespanShutdownFailure)

While serving, the command runs ``trio.run(serve_until_signalled, ...)``; that function,
the signal handling and the stderr logging live in ``trio_asgi._standalone`` (whose docstring
draws the task tree), shared with :func:`trio_asgi.run`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import platform
import shlex
import sys
from collections.abc import Callable
from pathlib import PurePath
from types import UnionType
from typing import (
    Any,
    Final,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import click
import trio
from click.core import ParameterSource

from .._config import Config
from .._errors import AppImportError, ConfigError, LifespanFailure, LifespanShutdownFailure
from .._importer import import_app
from .._net.binds import config_binds, describe_bind
from .._net.listeners import ListenError
from .._option import ENVVAR_PREFIX, cli_flag, envvar, option_of
from .._serve import serve
from .._standalone import LOG_LEVELS, ServeFunction, log_to_stderr, serve_until_signalled
from .._version import __version__

__all__ = ["Runtime", "ServeFunction", "main"]

#: Exit status when the app's lifespan startup fails (uvicorn's ``STARTUP_FAILURE``).
EXIT_STARTUP_FAILURE: Final = 3
#: Exit status when serving ended but the app's lifespan shutdown failed.
EXIT_SHUTDOWN_FAILURE: Final = 4
#: Exit status for every other failure, and for a shutdown forced by a second signal.
EXIT_FAILURE: Final = 1

logger = logging.getLogger("trio_asgi.error")

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What the command runs once its options are parsed and the app imported.

    Pass one as click's context object to replace a part (``CliRunner().invoke(cli, args,
    obj=Runtime(serve=fake))``); without one, the command uses the defaults.

    Attributes:
        serve: called as ``serve(app, config, shutdown_trigger=...)`` inside ``trio.run``;
            default :func:`trio_asgi.serve`. It must raise as ``serve`` does
            (:class:`~trio_asgi.LifespanFailure`, :class:`~trio_asgi.LifespanShutdownFailure`,
            :class:`OSError`) for the command to choose the same exit statuses.
    """

    serve: ServeFunction = serve


class _Option(click.Option):
    """A click option whose bad value, when it came from the environment, is blamed on the
    variable (``Invalid value for environment variable 'TRIO_ASGI_PORT': ...``): that is
    what the user has to fix, not a ``--port`` they never typed."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        if (
            ctx is not None
            and self.name is not None
            and ctx.get_parameter_source(self.name) is ParameterSource.ENVIRONMENT
        ):
            return f"environment variable {self._envvar_name(ctx)!r}"
        return super().get_error_hint(ctx)

    def _envvar_name(self, ctx: click.Context) -> str:
        """The variable the value came from: the option's own ``envvar`` if one is set, else
        click's automatic ``TRIO_ASGI_<NAME>``."""
        declared = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        for name in declared:
            if name in os.environ:
                return name
        return f"{ctx.auto_envvar_prefix}_{(self.name or '').upper()}"


def _path_hint(app: str) -> str | None:
    """The arguments that serve APP when it is a file path rather than an import string.

    ``"examples/hello.py"`` gives ``"--app-dir examples hello:app"`` (the attribute, if given
    after a colon, is kept; else ``app``); ``None`` when APP does not look like a path (no
    ``.py`` suffix and no ``/``) or its file name is not a module name.
    """
    file, _, attribute = app.partition(":")
    if not (file.endswith(".py") or "/" in file or os.sep in file):
        return None
    path = PurePath(file)
    module = path.stem if path.suffix == ".py" else path.name
    if not module.isidentifier():
        return None
    arguments = f"{module}:{attribute or 'app'}"
    if str(path.parent) != ".":
        arguments = f"--app-dir {shlex.quote(str(path.parent))} {arguments}"
    return arguments


def octal(value: str | int) -> int:
    """A file mode in octal digits, as ``chmod`` takes it: ``"660"`` or ``"0o660"`` (the
    click type of ``octal`` options; its name is the metavar, ``OCTAL``).

    Raises:
        ValueError: not octal digits; click reports it as a bad value (exit 2).
    """
    if isinstance(value, int):
        return value
    try:
        return int(value.removeprefix("0o"), 8)
    except ValueError:
        raise ValueError(f"{value!r} is not an octal mode such as 660 or 0o660") from None


def _click_type(hint: object) -> Any:
    """The click value type for a ``Config`` field's annotation (not ``bool``: a flag).

    A ``Literal`` gives its values as a :class:`click.Choice`; ``float`` accepts ``inf``
    (``float("inf")``); ``int | None`` and ``str | None`` take an int or a str, their
    ``None`` default being spelt by the option's ``show_default`` ("no limit") rather than on
    the command line; ``tuple[str, ...]`` is a str option given once per item.

    Raises:
        TypeError: an annotation the command has no option type for.
    """
    if get_origin(hint) is Literal:
        return click.Choice(get_args(hint))
    if hint in (int, float, str) or hint == tuple[str, ...]:
        return str if get_origin(hint) is tuple else hint
    if get_origin(hint) in (Union, UnionType):
        for kind in (int, str):
            if set(get_args(hint)) == {kind, type(None)}:
                return kind
    raise TypeError(f"no click type for the Config annotation {hint!r}")


def _config_options(command: _F) -> _F:
    """Add one click option per ``Config`` field that has a ``cli_help``, in field order.

    Name, type and default come from the field, the help text and ``show_default`` from its
    :class:`~trio_asgi._option.Option`; the values reach the command as keywords named like
    the fields, so ``Config(**settings)`` takes them as they are.
    """
    hints = get_type_hints(Config)
    # click.option prepends to the command's parameters: add the last field first.
    for field in reversed(dataclasses.fields(Config)):
        option = option_of(field)
        if option.cli_help is None:
            continue
        flag = cli_flag(field.name)
        settings: dict[str, Any] = {"default": field.default, "show_envvar": True}
        if hints[field.name] is bool:
            decl = f"{flag}/--no-{flag[2:]}"
        else:
            decl = flag
            settings["type"] = octal if option.octal else _click_type(hints[field.name])
            settings["multiple"] = get_origin(hints[field.name]) is tuple
        if option.show_default is not None:
            settings["show_default"] = option.show_default
        if option.extra_envvars:  # an explicit envvar replaces click's automatic one
            settings["envvar"] = [envvar(field.name), *option.extra_envvars]
        command = click.option(decl, field.name, cls=_Option, help=option.cli_help, **settings)(
            command
        )
    return command


@click.command(
    "trio-asgi",
    context_settings={
        "auto_envvar_prefix": ENVVAR_PREFIX,
        "show_default": True,
        "help_option_names": ["-h", "--help"],
    },
)
@click.argument("app", envvar="TRIO_ASGI_APP")
@_config_options
@click.option(
    "--factory",
    cls=_Option,
    is_flag=True,
    show_envvar=True,
    help="APP names a function that takes no arguments and returns the app.",
)
@click.option(
    "--app-dir",
    cls=_Option,
    type=click.Path(exists=True, file_okay=False),
    default=".",
    show_envvar=True,
    help="Directory put first on sys.path before APP is imported.",
)
@click.option(
    "--log-level",
    cls=_Option,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_envvar=True,
    help="Level of the server's log messages on stderr.",
)
@click.version_option(
    __version__,
    "--version",
    prog_name="trio-asgi",
    message=(
        f"%(prog)s %(version)s (trio {trio.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()})"
    ),
)
@click.pass_context
def cli(
    ctx: click.Context,
    /,
    app: str,
    factory: bool,
    app_dir: str,
    log_level: str,
    **settings: Any,
) -> None:
    """Serve the ASGI app APP, given as "module:attribute" (e.g. "myproject.main:app").

    APP may also come from the TRIO_ASGI_APP environment variable. The first CTRL+C or
    SIGTERM shuts down gracefully; a second one stops at once.
    """
    try:
        config = Config(**settings)
        binds = config_binds(config.bind, config.uds, config.fd, config.host, config.port)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    runtime = ctx.find_object(Runtime) or Runtime()

    with log_to_stderr(log_level):
        _warn_of_replaced_host_and_port(ctx, config)
        sys.path.insert(0, app_dir)
        try:
            asgi_app = import_app(app, factory=factory)
        except AppImportError as exc:
            # The cause (a factory's own exception, say) with its traceback, for debugging.
            logger.debug("Could not load the app %r", app, exc_info=exc)
            message = str(exc)
            hint = _path_hint(app)
            if hint is not None:
                message += f". To serve the file {app.partition(':')[0]}: trio-asgi {hint}"
            raise click.ClickException(message) from exc

        # What is alive now (the modules, the app) lives as long as the process: take it out
        # of the cyclic garbage collector's full collections, which otherwise walk all of it
        # every few thousand requests and show as tail latency (docs/performance.md).
        gc.freeze()
        try:
            graceful = trio.run(serve_until_signalled, runtime.serve, asgi_app, config)
        except AppImportError as exc:  # from serve(): the app fits no --interface
            raise click.ClickException(str(exc)) from exc
        except ConfigError as exc:  # from serve(): a TLS file, systemd's variables
            raise click.UsageError(str(exc), ctx) from exc
        except LifespanFailure as exc:
            raise _StartupFailure(f"application startup failed: {exc.message}") from exc
        except LifespanShutdownFailure as exc:
            raise _ShutdownFailure(f"application shutdown failed: {exc.message}") from exc
        except ListenError as exc:  # its message names the bind
            raise click.ClickException(f"could not listen: {exc}") from exc
        except OSError as exc:
            where = ", ".join(describe_bind(item) for item in binds)
            raise click.ClickException(f"could not listen on {where}: {exc}") from exc
    if not graceful:
        ctx.exit(EXIT_FAILURE)


def _warn_of_replaced_host_and_port(ctx: click.Context, config: Config) -> None:
    """One WARNING when ``--host`` or ``--port`` was given (or its variable) along with a
    ``--bind``, ``--uds`` or ``--fd``, which replace them, as gunicorn's ``--bind`` does."""
    if not (config.bind or config.uds is not None or config.fd is not None):
        return
    given = [
        cli_flag(name)
        for name in ("host", "port")
        if ctx.get_parameter_source(name)
        in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    ]
    if given:
        logger.warning(
            "%s ignored: --bind, --uds and --fd name where to listen instead", " and ".join(given)
        )


def main() -> None:
    """Run the ``trio-asgi`` command (the console-script entry point) and exit."""
    cli()


class _StartupFailure(click.ClickException):
    """``Error: application startup failed: ...`` on stderr, exit status 3."""

    exit_code = EXIT_STARTUP_FAILURE


class _ShutdownFailure(click.ClickException):
    """``Error: application shutdown failed: ...`` on stderr, exit status 4."""

    exit_code = EXIT_SHUTDOWN_FAILURE
