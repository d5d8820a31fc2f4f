"""Tier 1: the task-role table (trio_asgi/_tasks.py) is the one source of the task tree.

Every task the package starts takes its name from the table, the names are unique, and the
drawing in docs/architecture.md is the table's (regenerate it with
``python -m trio_asgi._tasks``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from trio_asgi import _tasks

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "trio_asgi"
SPAWNERS = frozenset({"start_soon", "start", "spawn_app"})
BEGIN = "<!-- generated from trio_asgi/_tasks.py: python -m trio_asgi._tasks -->\n```text\n"
END = "```\n<!-- end of generated tree -->"
ROLE_NAMES = {name for name, value in vars(_tasks).items() if isinstance(value, _tasks.TaskRole)}


def _spawn_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "_cli" or path.name == "_standalone.py":
            # the front ends' own tasks (the command's and trio_asgi.run's, shared in
            # _standalone.py) sit above serve() (architecture.md draws them)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SPAWNERS
                and node.args  # nursery.start(fn, ...), not re.Match.start()
            ):
                calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", node))
    return calls


def test_every_spawn_is_found() -> None:
    assert len(_spawn_calls()) >= 10


@pytest.mark.parametrize(("where", "call"), _spawn_calls(), ids=[w for w, _ in _spawn_calls()])
def test_every_task_is_named_from_the_table(where: str, call: ast.Call) -> None:
    [name] = [keyword.value for keyword in call.keywords if keyword.arg == "name"] or [None]
    assert isinstance(name, ast.Attribute), f"{where}: start it with name=tasks.ROLE.name"
    assert name.attr == "name", where
    assert isinstance(name.value, ast.Attribute), where
    assert name.value.attr in ROLE_NAMES, f"{where}: {name.value.attr} is not in _tasks.py"


def test_task_names_are_unique_and_say_trio_asgi() -> None:
    names = [node.name for node in _tasks.NODES if node.name]
    assert len(names) == len(set(names))
    assert all(name.startswith("trio-asgi ") for name in names)


def test_the_architecture_drawing_is_the_tables() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert BEGIN in doc, "docs/architecture.md lost its generated-tree markers"
    assert END in doc, "docs/architecture.md lost its generated-tree markers"
    drawn = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    assert drawn == _tasks.render_tree(), (
        "docs/architecture.md's task tree differs from trio_asgi/_tasks.py: paste the output "
        "of `python -m trio_asgi._tasks` between its markers"
    )


def test_a_node_before_its_parent_is_refused() -> None:
    child = _tasks.TaskRole("child", "a child", "f", "parent")
    with pytest.raises(ValueError, match="before its parent"):
        _tasks.render_tree((child,))
