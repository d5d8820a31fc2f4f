"""Tier 1: docs/deployment.md shows the files in docs/deploy/, the ones the tests run.

Each configuration block on the page follows a ``<!-- docs/deploy/NAME -->`` line and must be
that file, byte for byte; every file there is shown once, and no configuration block on the
page stands without its file. tests/deploy_configs.py, which turns a file into the config a
test runs, refuses a file that no longer has a value it replaces.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..deploy_configs import DEPLOY_DIR, DeployConfigDrift, deploy_config, unit_values

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "deployment.md"
INCLUDED = re.compile(r"<!-- docs/deploy/(\S+) -->\n```\w+\n(.*?)```\n", re.S)
CONFIG_FENCE = re.compile(r"^```(nginx|haproxy|ini)$", re.M)


def included_blocks() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for name, text in INCLUDED.findall(DOC.read_text(encoding="utf-8")):
        blocks.setdefault(name, []).append(text)
    return blocks


def deploy_files() -> list[str]:
    return sorted(path.name for path in DEPLOY_DIR.iterdir())


@pytest.mark.parametrize("name", deploy_files())
def test_each_deploy_file_is_on_the_page_once_and_verbatim(name: str) -> None:
    blocks = included_blocks()
    assert len(blocks.get(name, [])) == 1, f"docs/deployment.md should include {name} once"
    assert blocks[name][0] == (DEPLOY_DIR / name).read_text(encoding="utf-8"), (
        f"docs/deployment.md's block for docs/deploy/{name} differs from the file: "
        "copy the file into the block"
    )


def test_every_config_block_on_the_page_is_a_deploy_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert set(included_blocks()) == set(deploy_files())
    assert len(CONFIG_FENCE.findall(text)) == len(INCLUDED.findall(text))


def test_deploy_config_replaces_values_and_refuses_one_not_there_once() -> None:
    replaced = deploy_config("haproxy.cfg", {"bind :80": "bind fd@3"})
    assert "    bind fd@3\n" in replaced
    with pytest.raises(DeployConfigDrift, match="'bind :8080' occurs 0 times"):
        deploy_config("haproxy.cfg", {"bind :8080": "bind fd@3"})
    with pytest.raises(DeployConfigDrift, match="occurs 2 times"):
        deploy_config("haproxy.cfg", {"127.0.0.1:8000": "127.0.0.1:1"})


def test_the_service_is_socket_activated_and_names_no_bind() -> None:
    """trio-asgi.service starts from trio-asgi.socket and leaves where to listen to it."""
    service = (DEPLOY_DIR / "trio-asgi.service").read_text(encoding="utf-8")
    socket_unit = (DEPLOY_DIR / "trio-asgi.socket").read_text(encoding="utf-8")
    assert unit_values(service, "Requires") == ["trio-asgi.socket"]
    assert len(unit_values(socket_unit, "ListenStream")) == 1
    [exec_start] = unit_values(service, "ExecStart")
    command, *args = exec_start.split()
    assert command.endswith("/trio-asgi")
    assert args[-1] == "module:app"
    assert not [
        arg for arg in args if arg.startswith(("--bind", "--uds", "--fd", "--host", "--port"))
    ]
