"""Tier 3: each framework example runs with the command written at its top, in a subprocess.

``python -m trio_asgi`` with the arguments of the ``trio-asgi ...`` line of the example's
docstring, run from the repository root as written, plus ``--port 0``; one request to one
route, then SIGTERM and a clean exit. The examples' behaviour in process:
tests/integration/test_fastapi.py, test_quart_trio.py, test_litestar.py and test_django.py.
Each test runs once: the parser here is the command's own ``--http`` default.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .test_asgi2 import command_of
from .test_cli import EXIT_OK, REPO_ROOT, TIMEOUT, ServerProcess

EXAMPLES = REPO_ROOT / "examples"
DJANGO = EXAMPLES / "django_project" / "mysite"


@pytest.fixture
def http_parser() -> str:
    """Once, not once per parser (as in test_cli.py): the command chooses its parser."""
    return "auto"


def get_from_example(
    example: Path, expected: list[str], path: str, env: dict[str, str] | None = None
) -> httpx.Response:
    """Run the example's command on a free port, GET ``path``, stop it with SIGTERM."""
    command = command_of(example)
    assert command == expected
    with ServerProcess(*command[1:], "--port", "0", env=env) as server:
        port = server.wait_for_port()
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT)
        server.proc.terminate()
        assert server.wait_for_exit() == EXIT_OK
    assert not any("Traceback" in line for line in server.lines), server.lines
    return response


@pytest.fixture(autouse=True)
def from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the commands are written to run from there


def test_the_fastapi_example_runs_with_its_command() -> None:
    expected = ["trio-asgi", "--app-dir", "examples", "fastapi_app:app"]
    response = get_from_example(EXAMPLES / "fastapi_app.py", expected, "/items/7")
    assert response.json() == {"id": 7, "name": "item 7", "greeting": "hello from the lifespan"}


def test_the_quart_trio_example_runs_with_its_command() -> None:
    expected = ["trio-asgi", "--app-dir", "examples", "quart_trio_app:app"]
    response = get_from_example(EXAMPLES / "quart_trio_app.py", expected, "/hello/trio")
    assert response.json() == {"hello": "trio", "started": True}


def test_the_litestar_example_runs_with_its_command() -> None:
    expected = ["trio-asgi", "--app-dir", "examples", "litestar_app:app"]
    response = get_from_example(EXAMPLES / "litestar_app.py", expected, "/items/7")
    assert response.json() == {"id": 7, "greeting": "hello from the lifespan"}


def test_the_django_wsgi_example_runs_with_its_command(tmp_path: Path) -> None:
    expected = ["trio-asgi", "--app-dir", "examples/django_project", "--interface", "wsgi"]
    expected.append("mysite.wsgi:application")
    env = {"DJANGO_EXAMPLE_DB": str(tmp_path / "db.sqlite3")}
    response = get_from_example(DJANGO / "wsgi.py", expected, "/stream/?lines=2", env)
    assert response.text == "line 1 of 2\nline 2 of 2\n"


def test_the_django_asgi_example_runs_with_its_command(tmp_path: Path) -> None:
    expected = ["trio-asgi", "--app-dir", "examples/django_project", "--loop", "asyncio"]
    expected.append("mysite.asgi:application")
    env = {"DJANGO_EXAMPLE_DB": str(tmp_path / "db.sqlite3")}
    response = get_from_example(DJANGO / "asgi.py", expected, "/stream/?lines=2", env)
    assert response.text == "line 1 of 2\nline 2 of 2\n"
