"""What the views of ``Config`` need to know about each field: the :class:`Option` metadata.

Every :class:`~trio_asgi.Config` field carries one, in ``dataclasses.field(metadata=option(...))``,
and two views are generated from it: the ``trio-asgi`` command's server options (``_cli.py``)
and the option table of docs/configuration.md (``_config_docs.py``). This module also holds
the one naming rule both views follow (:func:`cli_flag`, :func:`envvar`). It imports nothing of
trio-asgi, so ``_config`` can use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["ENVVAR_PREFIX", "Option", "cli_flag", "envvar", "option", "option_of"]

#: Every CLI option can also come from the environment variable ``TRIO_ASGI_`` + its field
#: name in capitals (click's ``auto_envvar_prefix``): ``TRIO_ASGI_PORT=9000``.
ENVVAR_PREFIX: Final = "TRIO_ASGI"


def cli_flag(name: str) -> str:
    """The ``trio-asgi`` option for the field ``name``: ``--keep-alive-timeout``."""
    return "--" + name.replace("_", "-")


def envvar(name: str) -> str:
    """The environment variable for the field ``name``: ``TRIO_ASGI_KEEP_ALIVE_TIMEOUT``."""
    return f"{ENVVAR_PREFIX}_{name.upper()}"


@dataclass(frozen=True, kw_only=True)
class Option:
    """How one :class:`~trio_asgi.Config` field appears in the ``trio-asgi`` command and docs.

    The option's name is the field's (:func:`cli_flag`: ``--keep-alive-timeout`` for
    ``keep_alive_timeout``; ``--x/--no-x`` for a ``bool``), its value type, choices and
    default come from the field's annotation and default, so only what cannot be derived is
    written here.

    Attributes:
        cli_help (str | None): The option's ``--help`` text; ``None``: ``Config`` only, the
            command has no option for the field.
        meaning (str): The "meaning" column of docs/configuration.md's table (Markdown).
        doc_type (str): The "type" column (Markdown), e.g. ``"`float`, seconds"``; ``""``
            (default): derived from the annotation (``bool``, ``str``, a ``Literal``'s values).
        doc_default_note (str): Text after the default in the "default" column, e.g.
            ``"(16 MiB)"``.
        show_default (bool | str | None): click's ``show_default`` for the option: ``None``
            (default) shows the default, ``False`` hides it, a str is shown instead of it.
        octal (bool): The command reads the (int) value as octal digits, as ``chmod`` does:
            ``660`` or ``0o660``. Default False.
        extra_envvars (tuple[str, ...]): Environment variables the option also reads, after
            :func:`envvar`'s, in order (``FORWARDED_ALLOW_IPS``, as uvicorn reads it);
            ``()`` (default): none.
    """

    cli_help: str | None
    meaning: str
    doc_type: str = ""
    doc_default_note: str = ""
    show_default: bool | str | None = None
    octal: bool = False
    extra_envvars: tuple[str, ...] = ()


_KEY: Final = "trio_asgi.option"


def option(
    *,
    cli_help: str | None,
    meaning: str,
    doc_type: str = "",
    doc_default_note: str = "",
    show_default: bool | str | None = None,
    octal: bool = False,
    extra_envvars: tuple[str, ...] = (),
) -> Mapping[str, Option]:
    """A ``Config`` field's ``metadata``: the :class:`Option` built from the keywords."""
    return {
        _KEY: Option(
            cli_help=cli_help,
            meaning=meaning,
            doc_type=doc_type,
            doc_default_note=doc_default_note,
            show_default=show_default,
            octal=octal,
            extra_envvars=extra_envvars,
        )
    }


def option_of(config_field: dataclasses.Field[object]) -> Option:
    """The :class:`Option` metadata of one of ``dataclasses.fields(Config)``.

    Raises:
        KeyError: the field has no :class:`Option` metadata (every ``Config`` field has one).
        TypeError: its metadata under our key is not an :class:`Option`.
    """
    found = config_field.metadata[_KEY]
    if not isinstance(found, Option):
        raise TypeError(f"{config_field.name}'s metadata is not an Option: {found!r}")
    return found
