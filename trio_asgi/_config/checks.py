"""The value checks ``Config.__post_init__`` shares: each raises a
:class:`~trio_asgi.ConfigError` that names the field, the value and what it should be."""

from __future__ import annotations

import math

from .._errors import ConfigError

__all__ = [
    "check_count",
    "check_limits",
    "check_root_path",
    "check_seconds",
    "check_sockets",
    "is_int",
]


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_count(
    name: str, value: object, *, minimum: int, unit: str, optional: bool = False
) -> None:
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        none = " or None for no limit" if optional else ""
        raise ConfigError(
            f"{name} must be an int of at least {minimum} ({unit}){none}, not {value!r}"
        )


def check_seconds(name: str, value: object, *, allow_inf: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
        or (math.isinf(value) and not allow_inf)
    ):
        limit = "a number of seconds >= 0" + (" (inf for no limit)" if allow_inf else "")
        raise ConfigError(f"{name} must be {limit}, not {value!r}")


def check_sockets(
    bind: object, uds: object, fd: object, uds_permissions: object
) -> tuple[str, ...]:
    """Check the types of the listening-socket fields and return ``bind`` as a tuple (the
    forms themselves are parsed when ``serve()`` starts: ``_net.binds.config_binds``)."""
    if isinstance(bind, str) or not isinstance(bind, (tuple, list)):
        raise ConfigError(f"bind must be a tuple of str, not {bind!r}")
    if not all(isinstance(b, str) for b in bind):
        raise ConfigError(f"bind must be a tuple of str, not {bind!r}")
    if uds is not None and (not isinstance(uds, str) or not uds):
        raise ConfigError(f"uds must be a path (a non-empty str) or None, not {uds!r}")
    if fd is not None:
        check_count("fd", fd, minimum=0, unit="a descriptor", optional=True)
    if uds_permissions is not None and not (
        is_int(uds_permissions) and 0 <= uds_permissions <= 0o777  # type: ignore[operator]
    ):
        raise ConfigError(
            f"uds_permissions must be a mode from 0 to 0o777, not {uds_permissions!r}"
        )
    return tuple(bind)


def check_root_path(root_path: object) -> None:
    if not isinstance(root_path, str) or (
        root_path and (not root_path.startswith("/") or root_path.endswith("/"))
    ):
        raise ConfigError(
            "root_path must be '' or start with '/' and not end with '/' "
            f"(e.g. '/api'), not {root_path!r}"
        )


def check_limits(
    max_request_body_size: object, max_connections: object, max_requests_per_connection: object
) -> None:
    """The optional limits: None, or an int of at least 1."""
    for name, value, unit in (
        ("max_request_body_size", max_request_body_size, "bytes"),
        ("max_connections", max_connections, "connections"),
        ("max_requests_per_connection", max_requests_per_connection, "requests"),
    ):
        if value is not None:
            check_count(name, value, minimum=1, unit=unit, optional=True)
