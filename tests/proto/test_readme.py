"""The README's two opening commands are the ones CI and new users run: keep them honest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_readme_opens_with_a_serve_command_and_a_test_command() -> None:
    serve_command, test_command = _readme_commands()
    assert "pip install ." in serve_command
    assert "--app-dir examples hello:app" in serve_command
    assert 'pip install ".[test]"' in test_command
    assert "pytest" in test_command


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test_command = _readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_embedding_example_compiles() -> None:
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.+?)\n```", text, re.S)
    assert snippet is not None
    compile(snippet.group(1), "README.md", "exec")
