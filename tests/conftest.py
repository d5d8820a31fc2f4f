"""Fixtures shared by the test suite; the tools themselves live in tests/helpers.py.

One HTTP suite, two request parsers: every test in a module that serves HTTP with the
shared tools (``helpers``, ``http11_tools``, ``websocket_tools``) runs once with h11, the
reference, and once with httptools, its id saying which (``[h11]``, ``[httptools]``). The
autouse ``http_parser`` fixture sets ``helpers.HTTP_PARSER``, the ``Config.http`` those
tools ask for unless a test passes ``http=`` itself. Modules of pure unit tests (scope
builders, config, CLI, the response writer, the parsers compared directly) run once.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from . import helpers

HTTP_PARSERS = ("h11", "httptools")
SHARED_TOOLS = frozenset({"tests.helpers", "tests.http11_tools", "tests.websocket_tools"})


def uses_shared_tools(module: ModuleType) -> bool:
    """Whether ``module`` imported anything from the shared HTTP tools."""
    return any(
        getattr(value, "__module__", None) in SHARED_TOOLS
        or getattr(value, "__name__", None) in SHARED_TOOLS
        for value in vars(module).values()
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "http_parser" in metafunc.fixturenames and uses_shared_tools(metafunc.module):
        metafunc.parametrize("http_parser", HTTP_PARSERS, indirect=True)


@pytest.fixture(autouse=True)
def http_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The request parser this test runs with (``helpers.HTTP_PARSER``)."""
    parser: str = getattr(request, "param", helpers.HTTP_PARSER)
    monkeypatch.setattr(helpers, "HTTP_PARSER", parser)
    return parser


@pytest.fixture(autouse=True)
def no_unexpected_connection_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test in which a connection ended with an unexpected exception.

    ``HTTP11Connection.run`` logs such an exception (a bug in trio-asgi) instead of letting
    it end the server, so without this check a test could pass while one hid in the log.
    """
    yield
    unexpected = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.getMessage().startswith("Unexpected error on")
    ]
    assert not unexpected, unexpected
