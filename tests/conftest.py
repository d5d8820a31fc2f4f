"""Fixtures shared by the three tiers of the suite; the tools themselves live beside this file.

The suite comes in three tiers, one folder each (docs/testing.md):

- ``tests/proto/``: pure functions and the sans-IO parts (parsers, chunked decoder, scope
  builders, response writer, ``Config``, the option and docs generators, the task table,
  the layering rules, the importer, the command's option handling), no sockets;
- ``tests/driver/``: one connection driver (``HTTP11Connection``, the WebSocket session)
  over ``trio.testing`` memory streams, or a stream that fails on cue;
- ``tests/integration/``: ``serve()`` on loopback with real clients, the command in a
  subprocess, the examples, Starlette.

The shared tools (``helpers.py``, ``http11_tools.py``, ``websocket_tools.py``, ``apps/``)
stay here, in the ``tests`` package, so every tier imports them as ``..helpers``.

One HTTP suite, two request parsers: a test that requests the :func:`http_parser` fixture
runs once with h11, the reference, and once with httptools, its id saying which (``[h11]``,
``[httptools]``). The fixture sets ``helpers.HTTP_PARSER``, the ``Config.http`` that the
shared tools ask for unless a test passes ``http=`` itself. Who requests it is written down,
not guessed from imports:

- every test of the driver and integration tiers, through the autouse fixture
  ``each_parser`` in ``tests/driver/conftest.py`` and ``tests/integration/conftest.py``;
- a module of those tiers whose tests do not serve with the shared tools (the command run in
  a subprocess, tests/integration/test_cli.py) overrides ``http_parser`` with a plain
  fixture, so it runs once;
- any other test by naming ``http_parser`` as an argument.

The proto tier does not request it: its tests call the parsers directly (both of them, side
by side, in tests/proto/test_parsing.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import helpers

#: The request parsers every driver and integration test runs with (``Config.http`` values).
HTTP_PARSERS = ("h11", "httptools")


@pytest.fixture(params=HTTP_PARSERS)
def http_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The request parser this test runs with; sets ``helpers.HTTP_PARSER`` to it."""
    parser: str = request.param
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
