"""The httptools request parser: not written yet, so ``"auto"`` means h11 for now."""

from __future__ import annotations

HAVE_HTTPTOOLS = False


class HttptoolsParser:  # pragma: no cover - the next commit writes it
    """Placeholder for the httptools :class:`~trio_asgi._parsing.RequestParser`."""

    def __init__(self, max_header_size: int) -> None:
        raise NotImplementedError("the httptools parser is not written yet")
