"""Tier 1: which exceptions escaping an app mean the client left (``_app.left_with_the_client``)."""

from __future__ import annotations

import sys

import pytest

from trio_asgi import ClientDisconnected
from trio_asgi._app import left_with_the_client

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class FrameworkDisconnect(Exception):
    """Like ``starlette.requests.ClientDisconnect``: a framework's own error for it."""


def raised_while_handling_a_disconnect() -> Exception:
    try:
        try:
            raise ClientDisconnected("the client closed the connection")
        except OSError:
            raise FrameworkDisconnect() from None  # Starlette raises without "from"
    except FrameworkDisconnect as exc:
        exc.__suppress_context__ = False
        return exc


def test_a_framework_error_raised_while_handling_a_disconnect_means_the_client_left() -> None:
    assert left_with_the_client(raised_while_handling_a_disconnect())


def test_a_disconnect_reraised_through_a_group_means_the_client_left() -> None:
    group = ExceptionGroup("task group", [raised_while_handling_a_disconnect()])
    assert left_with_the_client(group)


@pytest.mark.parametrize("exc", [ValueError("a bug"), RuntimeError("no"), OSError("disk full")])
def test_other_errors_are_errors(exc: Exception) -> None:
    assert not left_with_the_client(exc)
