"""Tier 1: the package's import graph keeps its layers (read from the source, not imported).

- No import cycles between trio-asgi's modules, ``TYPE_CHECKING`` imports included: a part
  that needs another's shape declares a ``typing.Protocol`` instead
  (``_context.Connection``, ``_http.exchange.CycleOwner``, ``_ws.protocol.UpgradedConnection``,
  ``_ws.session.MessageChannel``, ``_ws.protocol.ChannelListener``).
- Imports point down the layers (``LAYERS``): sockets and bytes (``_net``) know nothing of
  HTTP; what every HTTP version shares (``_http``) knows nothing of HTTP/1.1 or WebSocket;
  the protocols (``_ws``, ``_h11``) know nothing of the connection seam that picks them; the
  connection seam nothing of ``serve()``; nothing but ``__init__`` and ``__main__`` imports
  the command line.
- The sans-IO modules (request parsing, the chunked decoder, the response writer, the
  request-head policy, scope building and message checks, the frame helpers, the deflate
  budget, the PROXY protocol reader, the bind parser, the TLS context and extension, the
  proxy-header trust model, the ASGI extension checks, config and its metadata and docs, the
  task table, errors, types) import neither trio nor, directly or through another module,
  anything of trio-asgi that does: they take values and return values, and are tested
  without an event loop.
- No module is over ``MAX_LINES`` lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent.parent / "trio_asgi"
MAX_LINES = 550  # about 500, with room for a docstring that draws a tree
#: Modules still over MAX_LINES, each with the most it may have until it is split. Shrink
#: only: the test fails if one grows, and if one is back under MAX_LINES (then remove it).
OVER_THE_LIMIT: dict[str, int] = {}

#: Lowest first. A module may import modules of its own layer or of a lower one, never of a
#: higher one. A package name stands for all of its modules.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {"_version", "_types", "_errors", "_option", "_config", "_config_docs", "_logging"}
        | {"_tasks", "_trust"}
    ),
    frozenset({"_net", "_app", "_context"}),
    frozenset({"_http"}),
    frozenset({"_ws"}),
    frozenset({"_h11"}),
    frozenset({"_connection"}),
    frozenset({"_interfaces"}),
    frozenset({"_lifespan", "_importer", "_standalone", "_serve"}),
    frozenset({"_cli", "_run", "__init__", "__main__"}),
)

SANS_IO = frozenset(
    {
        "_config",
        "_config_docs",
        "_errors",
        "_option",
        "_tasks",
        "_trust",
        "_types",
        "_h11.chunked",
        "_h11.httptools",
        "_h11.parsing",
        "_h11.policy",
        "_h11.response",
        "_interfaces.detect",
        "_http.extensions",
        "_http.forwarded",
        "_http.messages",
        "_http.request",
        "_http.scope",
        "_interfaces.pep3333",
        "_net.binds",
        "_net.proxy_protocol",
        "_net.tls",
        "_ws.deflate",
        "_ws.frames",
        "_ws.handshake",
        "_ws.inbound",
        "_ws.settings",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _package_of(name: str) -> list[str]:
    """The package a module's relative imports start from, as parts under trio_asgi."""
    parts = name.split(".")
    is_package = (PACKAGE.joinpath(*parts) / "__init__.py").exists()
    return parts if is_package and name != "__init__" else parts[:-1]


def _resolve(base: list[str], module: str | None, names: list[str]) -> set[str]:
    if module:
        target = ".".join([*base, *module.split(".")])
        return {target}
    # from . import x, y: each is a module of ``base`` (or a name in its __init__)
    found = set()
    for name in names:
        candidate = ".".join([*base, name])
        path = PACKAGE.joinpath(*candidate.split("."))
        is_module = path.with_suffix(".py").exists() or path.is_dir()
        found.add(candidate if is_module else ".".join(base) or "__init__")
    return found


def _imports(path: Path, name: str) -> tuple[set[str], bool]:
    """The trio_asgi modules ``path`` imports (dotted, under trio_asgi) and whether it
    imports trio."""
    modules: set[str] = set()
    uses_trio = False
    package = _package_of(name)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level > 0:
                base = package[: len(package) - (node.level - 1)]
                modules |= _resolve(base, node.module, [alias.name for alias in node.names])
            elif node.module is not None:
                uses_trio = uses_trio or node.module.split(".")[0] == "trio"
        elif isinstance(node, ast.Import):
            uses_trio = uses_trio or any(a.name.split(".")[0] == "trio" for a in node.names)
    return {m for m in modules if m}, uses_trio


GRAPH: dict[str, set[str]] = {}
USES_TRIO: set[str] = set()
LINES: dict[str, int] = {}
for _path in sorted(PACKAGE.rglob("*.py")):
    _name = _module_name(_path)
    _modules, _uses_trio = _imports(_path, _name)
    GRAPH[_name] = _modules - {_name}
    LINES[_name] = len(_path.read_text().splitlines())
    if _uses_trio:
        USES_TRIO.add(_name)


def _layer(name: str) -> int:
    top = name.split(".")[0]
    for rank, members in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


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
    assert {"_h11.connection", "_serve", "_h11.parsing", "_ws.session", "_cli.command"} <= (
        GRAPH.keys()
    )
    assert "_connection" in GRAPH["_serve"]
    assert "_ws.session" in GRAPH["_h11.connection"]
    assert "_errors" in GRAPH["_h11.connection"]  # from .._errors import ...
    assert {"_h11.connection", "_serve"} <= USES_TRIO


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_cycle_through(module: str) -> None:
    assert module not in _reachable(module), f"{module} imports itself through {GRAPH[module]}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_layers(module: str) -> None:
    upward = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports a higher layer: {upward}"


@pytest.mark.parametrize("module", sorted(SANS_IO))
def test_sans_io_module_imports_no_trio(module: str) -> None:
    assert module in GRAPH
    reached = _reachable(module) | {module}
    assert not reached & USES_TRIO, f"{module} reaches trio through {sorted(reached & USES_TRIO)}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_is_over_the_line_limit(module: str) -> None:
    limit = OVER_THE_LIMIT.get(module, MAX_LINES)
    assert LINES[module] <= limit, f"{module} has {LINES[module]} lines; split it"
    if module in OVER_THE_LIMIT:
        assert LINES[module] > MAX_LINES, f"{module} is short enough: drop it from OVER_THE_LIMIT"
