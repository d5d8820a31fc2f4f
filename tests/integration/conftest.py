"""Tier 3: the real server on loopback, real clients, the command in a subprocess.

Every test here runs once per request parser (tests/conftest.py): the autouse fixture below
requests ``http_parser``, which is parametrised over h11 and httptools. A module whose tests
do not serve with the shared tools overrides ``http_parser`` with a plain fixture and runs
once (tests/integration/test_cli.py: the command in a subprocess).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def each_parser(http_parser: str) -> str:
    """Run the test with each request parser in turn (``[h11]``, ``[httptools]``)."""
    return http_parser


#: The Django example project: its ``mysite.settings`` is the suite's one settings module.
DJANGO_PROJECT = Path(__file__).resolve().parent.parent.parent / "examples" / "django_project"


@pytest.fixture
def django_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Django set up with the example's ``mysite.settings``, the suite's only settings module.

    Django's settings are process-global and read once: every test that serves Django asks
    for this fixture, so whichever runs first configures Django the same way. Tests that
    need other views swap ``ROOT_URLCONF`` with ``django.test.override_settings``.
    """
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    # Read once, by the first test to load the settings: a file no test creates.
    monkeypatch.setenv("DJANGO_EXAMPLE_DB", str(tmp_path / "never-created.sqlite3"))
    monkeypatch.syspath_prepend(str(DJANGO_PROJECT))
    import django

    django.setup()
