"""The deployment files in docs/deploy/, made runnable for a test.

docs/deployment.md includes each file verbatim (tests/proto/test_deployment_docs.py checks
that), and the tests that put a real nginx, HAProxy or a systemd emulation in front of the
server run these files, not copies of them: :func:`deploy_config` replaces only the values a
deployment chooses (ports, socket and certificate paths, the app) and fails when one of them
is no longer in the file, so a test can never go on passing against a config the docs no
longer show.

- :func:`deploy_config`: a file's text with named values replaced, each found exactly once.
- :func:`unit_values`: the values of one ``Key=`` setting in a systemd unit file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: docs/deploy/, where the deployment files live.
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "docs" / "deploy"


class DeployConfigDrift(AssertionError):
    """A value a test replaces is not in the deployment file exactly once: the file changed
    and the test no longer knows what it runs."""


def deploy_config(name: str, replacements: Mapping[str, str]) -> str:
    """docs/deploy/``name`` with each key of ``replacements`` replaced by its value.

    Raises:
        DeployConfigDrift: a key occurs in the file zero times or more than once.
    """
    text = (DEPLOY_DIR / name).read_text(encoding="utf-8")
    for old, new in replacements.items():
        count = text.count(old)
        if count != 1:
            raise DeployConfigDrift(
                f"docs/deploy/{name}: {old!r} occurs {count} times, the test replaces it once"
            )
        text = text.replace(old, new)
    return text


def unit_values(text: str, key: str) -> list[str]:
    """The values of every ``key=`` line in a systemd unit file's ``text``, in order
    (comment lines, starting with ``#`` or ``;``, skipped; systemd.syntax(7))."""
    prefix = key + "="
    return [
        line.strip()[len(prefix) :] for line in text.splitlines() if line.strip().startswith(prefix)
    ]
