"""Tier 3: examples/django_project/ on the real server, through WSGI and through ASGI.

The example's own ``application``\\ s: Django's WSGI handler inside ``StaticFilesHandler``
(``mysite.wsgi``, ``interface="wsgi"``) and its ASGI handler inside
``ASGIStaticFilesHandler`` (``mysite.asgi``, ``loop="asyncio"``), each tested for the plain
view, the streaming view (chunked, line by line), the admin's login page with its form, a
static file of the admin's CSS, the admin's redirect to that page, and no database opened
on the way (the project serves without ``migrate``).
The example's command in a subprocess: tests/integration/test_examples_frameworks.py.
Django's disconnect listener and async views under ``--loop asyncio``:
tests/integration/test_asyncio_loop.py.

Django's settings are process-global: the ``django_settings`` fixture
(tests/integration/conftest.py) sets up the suite's one settings module, ``mysite.settings``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ..helpers import RunningServer, error_records, start_server

PROJECT = Path(__file__).resolve().parent.parent.parent / "examples" / "django_project"
TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less


@pytest.fixture(params=["wsgi", "asgi"])
async def server(
    request: pytest.FixtureRequest, nursery: trio.Nursery, django_settings: None
) -> Any:
    """The example served through WSGI (``mysite.wsgi``) and through Django's ASGI handler
    (``mysite.asgi``, asyncio code: ``loop="asyncio"``)."""
    if request.param == "wsgi":
        application = importlib.import_module("mysite.wsgi").application
        running = await start_server(nursery, application, interface="wsgi")
    else:
        application = importlib.import_module("mysite.asgi").application
        running = await start_server(nursery, application, loop="asyncio")
    yield running
    with trio.fail_after(TIMEOUT):
        await running.shutdown()
    from django.conf import settings

    assert not await trio.Path(settings.DATABASES["default"]["NAME"]).exists()  # no query


async def test_plain_view_streaming_view_and_static_css(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            hello = await http.get("/")
            streamed = await http.get("/stream/", params={"lines": 3})
            refused = await http.get("/stream/", params={"lines": "x"})
            css = await http.get("/static/admin/css/base.css")
            admin = await http.get("/admin/")
            missing = await http.get("/nowhere/")
    assert hello.status_code == 200
    assert hello.text == "Hello from Django at /\n"
    assert streamed.status_code == 200
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.text == "line 1 of 3\nline 2 of 3\nline 3 of 3\n"
    assert refused.status_code == 400
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert b"body" in css.content
    assert admin.status_code == 302
    assert admin.headers["location"] == "/admin/login/?next=/admin/"
    assert missing.status_code == 404
    assert error_records(caplog) == []


async def test_admin_login_page_shows_the_login_form(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            login = await http.get("/admin/login/")
    assert login.status_code == 200
    assert login.headers["content-type"] == "text/html; charset=utf-8"
    assert 'id="login-form"' in login.text
    assert "/static/admin/css/login.css" in login.text
    assert "csrftoken" in login.cookies
    assert error_records(caplog) == []
