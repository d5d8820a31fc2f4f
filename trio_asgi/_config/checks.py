"""The value checks ``Config.__post_init__`` shares: each raises a
:class:`~trio_asgi.ConfigError` that names the field, the value and what it should be."""

from __future__ import annotations

import math

from .._errors import ConfigError

__all__ = ["check_count", "check_seconds", "is_int"]


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
