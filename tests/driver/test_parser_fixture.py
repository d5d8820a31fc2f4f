"""Tier 2: the suite's own parametrisation (tests/conftest.py) reaches the shared tools.

The ``http_parser`` fixture that every driver and integration test requests (through the
tier's conftest.py) must make both helpers, ``open_connection`` and ``start_connection``,
serve with the parser it names, unless a test passes ``http=`` itself.
"""

from __future__ import annotations

import trio

from trio_asgi._h11.httptools import HttptoolsParser
from trio_asgi._h11.parsing import H11Parser

from ..helpers import H11Client, hello_app, make_config, open_connection
from ..http11_tools import start_connection


async def test_the_shared_tools_serve_with_the_parser_under_test(
    http_parser: str, nursery: trio.Nursery
) -> None:
    expected = {"h11": H11Parser, "httptools": HttptoolsParser}[http_parser]
    assert make_config().http == http_parser
    assert make_config(http="h11").http == "h11"  # a test's own choice wins
    client, connection = await open_connection(nursery, hello_app)
    assert type(connection.parser) is expected
    served = await start_connection(nursery, hello_app)
    assert type(served.connection.parser) is expected
    reader = H11Client(client)
    response = await reader.request()
    assert (response.status, response.body) == (200, b"Hello, world!")
    await client.aclose()
    await served.client.aclose()
