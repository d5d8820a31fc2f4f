"""Tier 2: the connection drivers over memory streams.

Every test here runs once per request parser (tests/conftest.py): the autouse fixture below
requests ``http_parser``, which is parametrised over h11 and httptools.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def each_parser(http_parser: str) -> str:
    """Run the test with each request parser in turn (``[h11]``, ``[httptools]``)."""
    return http_parser
