"""Every exception trio-asgi raises, in one tree.

::

    TrioASGIError                        root: ``except TrioASGIError`` catches all of ours
    ├── ConfigError (ValueError)         a Config field has a bad value; the message names it
    ├── AppImportError                   "module:attr", or the app, is not an app it can call
    ├── LifespanFailure                  the app's lifespan startup failed; nothing was served
    ├── LifespanShutdownFailure          serving ended, but the app's lifespan shutdown failed
    ├── ClientDisconnected (OSError)     send() after the client went away (ASGI HTTP spec 2.4)
    ├── UnexpectedMessage (RuntimeError) an ASGI message sent at the wrong time
    └── InvalidMessage (TypeError)       an ASGI message of the wrong type or shape

``ClientDisconnected`` subclasses :class:`OSError` because the ASGI spec ("Disconnected Client -
send exception") asks servers to raise "a server-specific subclass of OSError" from ``send()``
on a closed connection. The server catches it if the app lets it escape, and never logs it as
an error.

``UnexpectedMessage`` and ``InvalidMessage`` subclass :class:`RuntimeError` and
:class:`TypeError` so that apps written against other servers, which raise those built-ins for
the same mistakes, catch ours too.
"""

from __future__ import annotations

__all__ = [
    "AppImportError",
    "ClientDisconnected",
    "ConfigError",
    "InvalidMessage",
    "LifespanFailure",
    "LifespanShutdownFailure",
    "TrioASGIError",
    "UnexpectedMessage",
]


class TrioASGIError(Exception):
    """The root of every exception trio-asgi raises on purpose."""


class ConfigError(TrioASGIError, ValueError):
    """A :class:`~trio_asgi.Config` field has a value it cannot take.

    The message names the field and the bad value, e.g.
    ``port must be an int from 0 to 65535, not 70000``.
    """


class AppImportError(TrioASGIError):
    """An import string such as ``"module:app"``, or the app given to ``serve()``, did not
    lead to an app the server can call.

    Raised by the importer the CLI uses (module not found, no such attribute, not callable,
    malformed string), and by ``serve()`` with ``interface="auto"`` when the app fits no
    interface or several; the message is one line that says what to fix, naming the
    ``--interface`` that serves the app anyway.
    """


class LifespanFailure(TrioASGIError):
    """The app's lifespan startup failed, so :func:`~trio_asgi.serve` served nothing.

    Raised when the app sends ``lifespan.startup.failed`` (the ``message`` it gave is
    :attr:`message`), or raises during startup with ``lifespan="on"``
    (ASGI lifespan spec 2.0, "Startup - send event").

    Attributes:
        message (str): what the app said, or a description of the exception it raised.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LifespanShutdownFailure(TrioASGIError):
    """Serving ended normally, but the app's lifespan shutdown did not succeed.

    Raised by :func:`~trio_asgi.serve` after every connection has closed, when the app sent
    ``lifespan.shutdown.failed`` (ASGI lifespan spec 2.0, "Shutdown - send event"), raised
    after its startup had completed, or did not finish within ``lifespan_shutdown_timeout``
    seconds. The CLI exits with status 4, so a process manager sees it.

    Attributes:
        message (str): what the app said, or a description of what went wrong.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientDisconnected(TrioASGIError, OSError):
    """``send()`` was called after the client's connection closed.

    An :class:`OSError` as the ASGI HTTP spec (version 2.4, "Disconnected Client") requires.
    Apps may catch it to clean up; if it escapes the app, the server treats the request as
    finished and does not log an error.
    """


class UnexpectedMessage(TrioASGIError, RuntimeError):
    """The app sent an ASGI message that is not allowed in the current state.

    Examples: ``http.response.body`` before ``http.response.start``, a second
    ``http.response.start``, or a body longer or shorter than the ``Content-Length`` the app
    declared. The message names what was expected and what was sent.
    """


class InvalidMessage(TrioASGIError, TypeError):
    """The app sent an ASGI message whose type or shape is wrong.

    Examples: a message that is not a dict, a ``status`` that is not an int from 200 to 599,
    a header name that is not ``bytes``. The message names the key and what it must be.
    """
