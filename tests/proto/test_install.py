"""Tier 1: every install instruction trio-asgi prints or documents works from where the user is.

trio-asgi is not on PyPI, so ``pip install 'trio-asgi[fast]'`` cannot work anywhere. What can:
``pip install .`` or ``pip install '.[extra]'`` from a checkout, when pyproject.toml has that
extra, and ``pip install <name>`` of a package pyproject.toml requires (``httptools``, the
``fast`` extra's one requirement), which works from anywhere. Every ``pip install`` in the
README, docs/, the package's source (help texts, error messages, docstrings), and the running
command's ``--help`` and ``ConfigError`` is checked against pyproject.toml.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trio_asgi import Config, ConfigError
from trio_asgi._cli import command as _cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
#: ``pip install`` and its flags, then one target: ``.``, ``".[a,b]"``, ``'.[a]'`` or a name.
INSTALL = re.compile(r"pip install\s+(?:-\S+\s+)*(\"[^\"]+\"|'[^']+'|[^\s`'\")]+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _requirement_names() -> set[str]:
    """The distribution names pyproject.toml requires, in its dependencies or an extra."""
    requirements = list(PYPROJECT["project"]["dependencies"])
    requirements += [requirement for extra in EXTRAS.values() for requirement in extra]
    names = set()
    for requirement in requirements:
        match = _NAME.match(requirement)
        assert match is not None, requirement
        names.add(match.group().lower())
    return names


def _problem(target: str) -> str | None:
    """Why ``pip install TARGET`` does not work from where it is said, or None if it does."""
    target = target.strip("'\"")
    if target == ".":
        return None
    checkout = re.fullmatch(r"\.\[([a-z0-9_,-]+)\]", target)
    if checkout is not None:
        missing = [extra for extra in checkout.group(1).split(",") if extra not in EXTRAS]
        return f"pyproject.toml has no extra {missing}" if missing else None
    if target.lower().startswith(PYPROJECT["project"]["name"]):
        return "trio-asgi is not on PyPI: give the checkout ('.[extra]') instead"
    if target.lower() not in _requirement_names():
        return "names a package pyproject.toml does not require"
    return None


def _documented() -> list[tuple[str, str]]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "trio_asgi").rglob("*.py"))
    found = []
    for path in files:
        for target in INSTALL.findall(path.read_text()):
            found.append((f"{path.relative_to(ROOT)}", target))
    return found


def test_the_instructions_are_found() -> None:
    targets = {target for _, target in _documented()}
    assert {".", '".[test]"', "httptools", "'.[fast]'"} <= targets


@pytest.mark.parametrize(("where", "target"), _documented())
def test_every_documented_install_works_from_where_it_is_said(where: str, target: str) -> None:
    assert _problem(target) is None, f"{where}: pip install {target}: {_problem(target)}"


def test_the_rule_rejects_what_does_not_work() -> None:
    assert _problem("'trio-asgi[fast]'") is not None
    assert _problem("'.[fastest]'") is not None
    assert _problem("uvloop") is not None
    assert _problem("'.[fast,test]'") is None


def test_fast_is_the_extra_that_installs_httptools() -> None:
    assert [re.split(r"[<>=!~ ;\[]", r)[0] for r in EXTRAS["fast"]] == ["httptools"]


def test_the_config_error_gives_an_install_that_always_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # import httptools raises ImportError
    with pytest.raises(ConfigError) as raised:
        Config(http="httptools")
    [target] = INSTALL.findall(str(raised.value))
    assert target == "httptools"
    assert _problem(target) is None


def test_the_help_gives_installs_that_work() -> None:
    result = CliRunner().invoke(_cli.cli, ["--help"])
    targets = INSTALL.findall(" ".join(result.output.split()))
    assert targets, result.output
    assert [t for t in targets if _problem(t) is not None] == []


def test_the_asyncio_loop_error_gives_installs_that_always_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trio_asyncio", None)  # not installed, as far as Python knows
    with pytest.raises(ConfigError) as raised:
        Config(loop="asyncio")
    targets = INSTALL.findall(str(raised.value))
    assert targets == ["'.[asyncio]'", "trio-asyncio"]
    assert [t for t in targets if _problem(t) is not None] == []
