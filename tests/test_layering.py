"""Tier 1: the package's import graph keeps its layers (read from the source, not imported).

- No import cycles between trio-asgi's modules, ``TYPE_CHECKING`` imports included: a part
  that needs another's shape declares a ``typing.Protocol`` instead (``_context.Connection``,
  ``_websocket.UpgradedConnection``).
- The sans-IO modules (request parsing, the chunked decoder, the response writer, scope
  building and message checks, the deflate budget, config and its metadata and docs, the
  task table, errors, types) import neither
  trio nor, directly or through another module, anything of trio-asgi that does: they take
  values and return values, and are tested without an event loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trio_asgi"

SANS_IO = frozenset(
    {
        "_chunked",
        "_config",
        "_config_docs",
        "_errors",
        "_httptools_parser",
        "_parsing",
        "_response",
        "_option",
        "_scope",
        "_tasks",
        "_types",
        "_ws_deflate",
        "_ws_frames",
    }
)


def _imports(path: Path) -> tuple[set[str], bool]:
    """The trio_asgi modules ``path`` imports (by short name) and whether it imports trio."""
    modules: set[str] = set()
    uses_trio = False
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from ._x import y / from . import _x
                if node.module:
                    modules.add(node.module.split(".")[0])
                else:
                    modules.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module is not None:
                uses_trio = uses_trio or node.module.split(".")[0] == "trio"
        elif isinstance(node, ast.Import):
            uses_trio = uses_trio or any(a.name.split(".")[0] == "trio" for a in node.names)
    return modules, uses_trio


GRAPH: dict[str, set[str]] = {}
USES_TRIO: set[str] = set()
for _path in sorted(PACKAGE.glob("_*.py")):
    _modules, _uses_trio = _imports(_path)
    GRAPH[_path.stem] = _modules - {"__init__"}
    if _uses_trio:
        USES_TRIO.add(_path.stem)


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for module in GRAPH.get(todo.pop(), set()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def test_the_graph_is_read() -> None:
    assert {"_http11", "_serve", "_parsing", "_websocket"} <= GRAPH.keys()
    assert "_http11" in GRAPH["_serve"]
    assert {"_http11", "_serve"} <= USES_TRIO


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_cycle_through(module: str) -> None:
    assert module not in _reachable(module), f"{module} imports itself through {GRAPH[module]}"


@pytest.mark.parametrize("module", sorted(SANS_IO))
def test_sans_io_module_imports_no_trio(module: str) -> None:
    assert module in GRAPH
    reached = _reachable(module) | {module}
    assert not reached & USES_TRIO, f"{module} reaches trio through {sorted(reached & USES_TRIO)}"
