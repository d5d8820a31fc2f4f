"""The ``trio-asgi`` command: a thin skin over :class:`~trio_asgi.Config` and
:func:`~trio_asgi.serve` (``command.py``: the click command generated from ``Config``
field metadata, and the signal handling around ``serve()``)."""

from .command import cli, main

__all__ = ["cli", "main"]
