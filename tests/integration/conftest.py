"""Tier 3: the real server on loopback, real clients, the command in a subprocess.

Every test here runs once per request parser (tests/conftest.py): the autouse fixture below
requests ``http_parser``, which is parametrised over h11 and httptools. A module whose tests
do not serve with the shared tools overrides ``http_parser`` with a plain fixture and runs
once (tests/integration/test_cli.py: the command in a subprocess).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def each_parser(http_parser: str) -> str:
    """Run the test with each request parser in turn (``[h11]``, ``[httptools]``)."""
    return http_parser
