"""The "Server settings" table of docs/configuration.md, rendered from ``Config``'s metadata.

Each row comes from one :class:`~trio_asgi.Config` field and its :class:`~trio_asgi._option.Option`:
the option and environment variable are named from the field as the ``trio-asgi`` command
names them (tests/proto/test_docs_generated.py checks the two agree), the type and default from its
annotation and default unless the metadata says more. The doc holds the table between
:data:`BEGIN` and :data:`END`; regenerate it from the repository's root with::

    python -m trio_asgi._config_docs            # rewrite docs/configuration.md
    python -m trio_asgi._config_docs --check    # exit 1 if it is stale

Sans-IO: no trio, no click; values in, text out (and the one file written by :func:`main`).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from ._config import Config
from ._option import cli_flag, envvar, option_of

__all__ = ["BEGIN", "DOC_PATH", "END", "option_table", "replace_table"]

#: The comment line before the generated table.
BEGIN: Final = (
    "<!-- generated from Config metadata: python -m trio_asgi._config_docs (do not edit) -->"
)
#: The comment line after it.
END: Final = "<!-- end of generated table -->"
#: The doc, relative to the repository's root.
DOC_PATH: Final = Path("docs") / "configuration.md"

_HEADER: Final = (
    "| `Config` field | CLI option | environment variable | type | default | meaning |\n"
    "| --- | --- | --- | --- | --- | --- |\n"
)


def _type_text(hint: object) -> str:
    if typing.get_origin(hint) is Literal:
        return ", ".join(f'`"{choice}"`' for choice in typing.get_args(hint))
    if isinstance(hint, type):
        return f"`{hint.__name__}`"
    raise TypeError(f"no type text for {hint!r}: give the field's Option a doc_type")


def _default_text(value: object, note: str) -> str:
    if value is None:
        text = "none"
    elif isinstance(value, str):
        text = f'`"{value}"`'
    else:
        text = f"`{value!r}`"
    return f"{text} {note}" if note else text


def option_table() -> str:
    """The Markdown table of every ``Config`` field, one row each, in field order.

    Returns:
        The header, the separator and one row per field, each line ending in ``\\n``.

    Raises:
        TypeError: a field's type text cannot be derived and its metadata gives none.
    """
    hints = typing.get_type_hints(Config)
    rows = [_HEADER]
    for config_field in dataclasses.fields(Config):
        name = config_field.name
        option = option_of(config_field)
        if option.cli_help is None:
            flag = env = "none"
        else:
            flag = f"`{cli_flag(name)}`"
            if hints[name] is bool:
                flag += f" / `--no-{cli_flag(name)[2:]}`"
            env = ", ".join(f"`{each}`" for each in (envvar(name), *option.extra_envvars))
        cells = (
            f"`{name}`",
            flag,
            env,
            option.doc_type or _type_text(hints[name]),
            _default_text(config_field.default, option.doc_default_note),
            option.meaning,
        )
        rows.append("| " + " | ".join(cells) + " |\n")
    return "".join(rows)


def replace_table(doc: str) -> str:
    """``doc`` with the text between its :data:`BEGIN` and :data:`END` lines regenerated.

    Raises:
        ValueError: ``doc`` lacks either marker line, or has them out of order.
    """
    begin = doc.find(BEGIN + "\n")
    end = doc.find(END, begin)
    if begin < 0 or end < 0:
        raise ValueError(f"the doc needs the lines {BEGIN!r} and, after it, {END!r}")
    start = begin + len(BEGIN) + 1
    return doc[:start] + option_table() + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite :data:`DOC_PATH` (under the current directory); ``--check``: only compare.

    Returns:
        The exit status: 0 when the doc is (now) up to date, 1 when ``--check`` found it stale.

    Raises:
        OSError: the doc cannot be read or written.
        ValueError: the doc lacks the marker lines.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    check = args == ["--check"]
    if args and not check:
        raise SystemExit("usage: python -m trio_asgi._config_docs [--check]")
    doc = DOC_PATH.read_text(encoding="utf-8")
    new = replace_table(doc)
    if new == doc:
        return 0
    if check:
        print(f"{DOC_PATH} is stale: run python -m trio_asgi._config_docs", file=sys.stderr)
        return 1
    DOC_PATH.write_text(new, encoding="utf-8")
    print(f"rewrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
