"""What to listen on, parsed: ``--bind`` values and systemd's socket-activation variables.

Sans-IO: strings in, typed values out; nothing here opens a socket (``listeners.bind``
does). The ``--bind`` forms are those gunicorn and Hypercorn accept::

    HOST:PORT        127.0.0.1:8000, localhost:8000, 0.0.0.0:0 (port 0: the system picks)
    HOST             port 8000, as gunicorn and Hypercorn default
    [IPV6]:PORT      [::1]:8000, [::]:8000; [IPV6] alone is port 8000
    tcp://HOST:PORT  gunicorn's spelling of HOST:PORT
    unix:PATH        a Unix domain socket file; unix://PATH is gunicorn's spelling
    fd://N           an inherited descriptor that is already a listening stream socket

Rules this module keeps:

- A bad value raises :class:`~trio_asgi.ConfigError` (a ``ValueError``) whose message quotes
  the value, says what is wrong with it, and lists the accepted forms (``BIND_FORMS``): the
  command line prints it as it is.
- An IPv6 address goes in brackets: ``::1:8000`` is ambiguous and refused, where gunicorn and
  Hypercorn would guess.
- Host names are not resolved here; a name that resolves to several addresses listens on
  all of them (``listeners.bind``).
- :func:`systemd_listen_fds` follows sd_listen_fds(3) and sd_listen_fds_with_names(3):
  descriptors start at ``SD_LISTEN_FDS_START`` (3), only when ``LISTEN_PID`` is this
  process; names come from ``LISTEN_FDNAMES`` (colon-separated, ``"unknown"`` when unset).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from .._errors import ConfigError

__all__ = [
    "BIND_FORMS",
    "DEFAULT_PORT",
    "SD_LISTEN_FDS_START",
    "SYSTEMD_VARIABLES",
    "Bind",
    "FDBind",
    "TCPBind",
    "UnixBind",
    "config_binds",
    "describe_bind",
    "parse_bind",
    "systemd_listen_fds",
]

#: The forms a bind may take, as error messages and help texts list them.
BIND_FORMS: Final = "HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N"
#: The port of a bind that names only a host (gunicorn's and Hypercorn's default).
DEFAULT_PORT: Final = 8000
#: The first descriptor systemd passes (sd_listen_fds(3), ``SD_LISTEN_FDS_START``).
SD_LISTEN_FDS_START: Final = 3
#: The variables of socket activation; unset them once read, so children do not inherit them
#: (sd_listen_fds(3), ``unset_environment``).
SYSTEMD_VARIABLES: Final = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_MAX_PORT: Final = 65535
#: Characters that never appear in a host name or an IPv4 address.
_NOT_IN_HOST: Final = frozenset(" \t\r\n/\\[]@?#%")


@dataclass(frozen=True, slots=True)
class TCPBind:
    """Listen on TCP ``host`` (an address or a name, unresolved) and ``port`` (0: any).

    Attributes:
        host (str): e.g. ``"127.0.0.1"``, ``"::1"`` (no brackets), ``"localhost"``.
        port (int): 0 to 65535.
    """

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class UnixBind:
    """Listen on a Unix domain socket created at ``path`` (str, as given: relative paths are
    relative to the working directory)."""

    path: str


@dataclass(frozen=True, slots=True)
class FDBind:
    """Serve the inherited descriptor ``fd`` (int), a listening stream socket of any family.

    Attributes:
        fd (int): the descriptor number.
        name (str | None): systemd's name for it (``LISTEN_FDNAMES``), for the log; None for
            ``fd://N``.
    """

    fd: int
    name: str | None = None


#: One thing to listen on.
Bind = TCPBind | UnixBind | FDBind


def _refuse(text: str, why: str) -> ConfigError:
    return ConfigError(f"bind {text!r}: {why}; use {BIND_FORMS}")


def _port(text: str, port: str) -> int:
    if not (port.isascii() and port.isdigit()) or int(port) > _MAX_PORT:
        raise _refuse(text, f"the port must be a number from 0 to {_MAX_PORT}, not {port!r}")
    return int(port)


def parse_bind(text: str) -> Bind:
    """The bind ``text`` names, in one of the forms the module docs list.

    Raises:
        ConfigError: ``text`` is none of them; the message says why and lists the forms.
    """
    if not isinstance(text, str):
        raise ConfigError(f"bind must be a str ({BIND_FORMS}), not {text!r}")
    if text.startswith("unix:"):
        path = text.removeprefix("unix://") if text.startswith("unix://") else text[5:]
        if not path:
            raise _refuse(text, "the Unix socket path is empty")
        if "\0" in path:
            raise _refuse(text, "the Unix socket path holds a NUL character")
        return UnixBind(path)
    if text.startswith("fd://"):
        number = text[5:]
        if not (number.isascii() and number.isdigit()):
            raise _refuse(text, f"the descriptor must be a number, not {number!r}")
        return FDBind(int(number))
    address = text.removeprefix("tcp://")
    scheme, separator, _ = address.partition("://")
    if separator:
        raise _refuse(text, f"{scheme}:// is not a bind (no scheme but tcp://, unix: and fd://)")
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket:
            raise _refuse(text, "the IPv6 address has no closing ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(text, f"{host!r} in brackets is not an IPv6 address") from None
        if not rest:
            return TCPBind(host, DEFAULT_PORT)
        if not rest.startswith(":"):
            raise _refuse(text, f"expected ':PORT' after the ']', not {rest!r}")
        return TCPBind(host, _port(text, rest[1:]))
    if address.count(":") > 1:
        raise _refuse(text, "an IPv6 address goes in brackets, as in [::1]:8000")
    host, colon, port = address.partition(":")
    if not host:
        raise _refuse(text, "the host is empty (0.0.0.0 listens on every IPv4 address)")
    if _NOT_IN_HOST.intersection(host):
        raise _refuse(text, f"{host!r} is not a host name or address")
    return TCPBind(host, _port(text, port) if colon else DEFAULT_PORT)


def config_binds(
    bind: Sequence[str], uds: str | None, fd: int | None, host: str, port: int
) -> list[Bind]:
    """What a ``Config`` listens on: its ``bind`` entries, then ``uds``, then ``fd``; when
    none is given, ``TCPBind(host, port)``. Given binds replace ``host`` and ``port``, as
    gunicorn's ``--bind`` and uvicorn's ``--uds``/``--fd`` do.

    Raises:
        ConfigError: an entry of ``bind`` is none of the forms (:func:`parse_bind`), or
            ``uds`` holds a NUL character.
    """
    binds = [parse_bind(text) for text in bind]
    if uds is not None:
        if "\0" in uds:
            raise ConfigError(f"uds {uds!r}: the Unix socket path holds a NUL character")
        binds.append(UnixBind(uds))
    if fd is not None:
        binds.append(FDBind(fd))
    return binds or [TCPBind(host, port)]


def describe_bind(item: Bind) -> str:
    """``item`` as a user writes it: ``"[::1]:8000"``, ``"unix:/run/app.sock"``, ``"fd://3"``."""
    if isinstance(item, TCPBind):
        return f"[{item.host}]:{item.port}" if ":" in item.host else f"{item.host}:{item.port}"
    if isinstance(item, UnixBind):
        return f"unix:{item.path}"
    return f"fd://{item.fd}"


def systemd_listen_fds(environ: Mapping[str, str], pid: int) -> list[tuple[int, str]]:
    """The sockets systemd passed to process ``pid``: ``(fd, name)`` for each, in order
    (sd_listen_fds(3)). Empty when ``LISTEN_PID`` or ``LISTEN_FDS`` is unset, or when
    ``LISTEN_PID`` names another process (the variables were inherited, not meant for us).

    Descriptors are ``SD_LISTEN_FDS_START`` (3) onwards; names are ``LISTEN_FDNAMES``
    split at ``:``, or ``"unknown"`` each when it is unset (sd_listen_fds_with_names(3)).
    The caller unsets ``SYSTEMD_VARIABLES`` afterwards.

    Raises:
        ConfigError: a variable is malformed: ``LISTEN_PID`` or ``LISTEN_FDS`` not a
            number, or ``LISTEN_FDNAMES`` with another count of names than ``LISTEN_FDS``
            (systemd's library fails with ``EINVAL`` there too).
    """
    listen_pid = environ.get("LISTEN_PID")
    listen_fds = environ.get("LISTEN_FDS")
    if listen_pid is None or listen_fds is None:
        return []
    for variable, value in (("LISTEN_PID", listen_pid), ("LISTEN_FDS", listen_fds)):
        if not (value.isascii() and value.isdigit()):
            raise ConfigError(
                f"systemd socket activation: {variable} must be a number, not {value!r}"
            )
    if int(listen_pid) != pid:
        return []
    count = int(listen_fds)
    names_value = environ.get("LISTEN_FDNAMES")
    if names_value is None:
        names = ["unknown"] * count
    else:
        names = names_value.split(":") if names_value else []
    if len(names) != count:
        raise ConfigError(
            f"systemd socket activation: LISTEN_FDNAMES has {len(names)} name(s) "
            f"({names_value!r}), LISTEN_FDS says {count}"
        )
    return [(SD_LISTEN_FDS_START + index, name) for index, name in enumerate(names)]
