"""PLACEHOLDER so this branch imports: the WSGI helper's branch provides the real module.

The merge takes the other branch's file. Only the name and the signature are relied on here.
"""

from __future__ import annotations

from .._types import Receive, Scope, Send

__all__ = ["WSGIAdapter"]


class WSGIAdapter:
    """Placeholder: ``WSGIAdapter(app, *, threads=n)``, an ASGI 3 callable."""

    def __init__(self, app: object, *, threads: int) -> None:
        self.app = app
        self.threads = threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError("the WSGI adapter comes from its own branch")
