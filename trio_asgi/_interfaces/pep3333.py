"""PEP 3333 (WSGI 1.0.1) as pure values: no trio, no I/O, testable as functions.

What lives here, each following the PEP section named in its docstring:

- :func:`wsgi_environ` builds the ``environ`` dict from an ASGI ``http`` scope;
- :class:`RequestBody` is ``wsgi.input``: it pulls the body one chunk at a time through a
  ``fetch`` callable (the adapter's hop to the Trio side), so the body is never held whole;
- :class:`ResponseStart` is ``start_response``'s state: the status and headers, ``exc_info``;
- :class:`ErrorStream` is ``wsgi.errors``: one ERROR line on ``trio_asgi.error`` per line;
- :class:`FileWrapper` is ``wsgi.file_wrapper``: a file-like object as an iterable of blocks.

Strings follow PEP 3333's "native strings" rule: every ``environ`` value taken from the
request is the latin-1 decoding of its bytes, so an app gets the exact bytes back with
``value.encode("latin-1")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Final
from urllib.parse import unquote_to_bytes

from .._errors import InvalidMessage, UnexpectedMessage
from .._logging import error_logger

__all__ = [
    "ErrorStream",
    "ExcInfo",
    "FileWrapper",
    "RequestBody",
    "ResponseStart",
    "wsgi_environ",
]

#: ``sys.exc_info()`` as ``start_response`` takes it.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
#: Bytes per block a :class:`FileWrapper` reads, unless the app says otherwise.
FILE_WRAPPER_BLOCK_SIZE: Final = 8192  # bytes
#: Headers that become ``CONTENT_TYPE`` / ``CONTENT_LENGTH``, without the ``HTTP_`` prefix.
_UNPREFIXED: Final = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


def _native(value: bytes) -> str:
    return value.decode("latin-1")


def _path_info(scope: Any, script_name: str) -> str:
    """``PATH_INFO``: the percent-decoded raw path as latin-1, less ``SCRIPT_NAME`` when the
    path starts with it at a segment boundary (``/app`` strips from ``/app/x``, not from
    ``/apple``)."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        path = _native(unquote_to_bytes(raw_path))
    else:
        path = _native(scope["path"].encode("utf-8"))
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path = path[len(script_name) :]
    return path


def _server(scope: Any, headers: dict[str, str]) -> tuple[str, str]:
    """``SERVER_NAME`` and ``SERVER_PORT``: from ``scope["server"]``, else the Host header
    (PEP 3333 "environ Variables"; the port defaults to the scheme's)."""
    server = scope.get("server")
    if server is not None:
        return server[0], str(server[1])
    host = headers.get("HTTP_HOST", "")
    default_port = _DEFAULT_PORTS.get(scope.get("scheme", "http"), "80")
    if host.startswith("["):  # an IPv6 literal, RFC 3986 section 3.2.2
        address, _, rest = host[1:].partition("]")
        return address, rest[1:] if rest.startswith(":") else default_port
    name, _, port = host.partition(":")
    return name or "localhost", port or default_port


def wsgi_environ(scope: Any, body_input: Any, errors: Any) -> dict[str, Any]:
    """The WSGI ``environ`` for one ASGI ``http`` scope (PEP 3333, "environ Variables").

    Args:
        scope: the ASGI ``http`` connection scope (ASGI HTTP spec 2.5).
        body_input: the ``wsgi.input`` stream (a :class:`RequestBody` when served).
        errors: the ``wsgi.errors`` stream (an :class:`ErrorStream` when served).

    Returns:
        a new dict. ``SCRIPT_NAME`` is ``scope["root_path"]``; ``PATH_INFO`` the decoded
        path less that prefix; ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` appear only when the
        request has them; ``REMOTE_ADDR`` / ``REMOTE_PORT`` only when the client is known.
        Each other header becomes ``HTTP_<NAME>`` (``-`` as ``_``); repeated headers are
        joined with ``", "`` (``Cookie`` with ``"; "``, RFC 6265 section 5.4). A header
        whose name holds ``_`` is dropped, as Apache, nginx and gunicorn do, since it would
        collide with the ``-`` spelling (``X_User`` would pass for ``X-User``).
        ``wsgi.input_terminated`` is True (the input ends at the end of the body, also for
        chunked requests with no ``CONTENT_LENGTH``), as in mod_wsgi and gunicorn.
    """
    script_name = _native(scope.get("root_path", "").encode("utf-8"))
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        lower = name.lower()
        key = _UNPREFIXED.get(lower)
        if key is None:
            if b"_" in lower:
                continue
            key = "HTTP_" + _native(lower).upper().replace("-", "_")
        text = _native(value)
        if key in headers:
            separator = "; " if lower == b"cookie" else ", "
            headers[key] = headers[key] + separator + text
        else:
            headers[key] = text
    server_name, server_port = _server(scope, headers)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": _path_info(scope, script_name),
        "QUERY_STRING": _native(scope.get("query_string", b"")),
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        **headers,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body_input,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
    }
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    return environ


class RequestBody:
    """``wsgi.input`` (PEP 3333, "Input and Error Streams"): the request body, pulled one
    chunk at a time as the app reads it.

    ``fetch()`` returns the next ``(chunk, more)``; it is called only when a read needs
    bytes that are not here yet, so at most one chunk (plus what a read asked for) is held
    at any time. ``more`` False ends the input: every later read returns ``b""``. The
    adapter's ``fetch`` ends it also when the client disconnected, so a body cut short
    reads as a short body; an app that compares it with ``CONTENT_LENGTH`` (Werkzeug does)
    sees the difference.

    ``read(size)`` returns ``size`` bytes unless the input ends first, ``read()`` /
    ``read(-1)`` / ``read(None)`` everything that is left (the app asked for it whole),
    ``readline(limit)`` up to and including the next ``b"\\n"``, ``readlines(hint)`` lines
    until ``hint`` bytes, and iteration yields lines.
    """

    __slots__ = ("_buffer", "_fetch", "_more")

    def __init__(self, fetch: Callable[[], tuple[bytes, bool]]) -> None:
        self._fetch = fetch
        self._buffer = bytearray()
        self._more = True

    def _pull(self) -> bool:
        """Fetch one more chunk into the buffer; False at the end of the input."""
        while self._more:
            chunk, self._more = self._fetch()
            if chunk:
                self._buffer += chunk
                return True
        return False

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that are left for ``None`` or a negative ``size``)."""
        if size is None or size < 0:
            while self._pull():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._pull():
            pass
        return self._take(size)

    def readline(self, limit: int | None = -1) -> bytes:
        """The next line with its ``b"\\n"``, at most ``limit`` bytes if ``limit >= 0``."""
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline != -1:
                end = newline + 1
                break
            searched = len(self._buffer)
            if (limit is not None and 0 <= limit <= searched) or not self._pull():
                end = searched
                break
        if limit is not None and limit >= 0:
            end = min(end, limit)
        return self._take(end)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stops once their total reaches ``hint`` bytes if it is > 0."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ResponseStart:
    """``start_response`` (PEP 3333, "The start_response() Callable") and what it set.

    Args:
        write: what ``start_response`` returns, the app's ``write(data)`` callable.

    Attributes:
        status: the status code the app gave, or None before ``start_response``.
        headers: the response headers, latin-1 encoded, as ASGI sends them.
        head_sent: set by the adapter once the head has gone to the client.
    """

    __slots__ = ("_write", "head_sent", "headers", "status")

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """Set the status and headers; returns the ``write`` callable.

        Raises:
            BaseException: ``exc_info``'s exception, re-raised, if the head was already
                sent (PEP 3333: the app's error handler then ends the response).
            UnexpectedMessage: a second call without ``exc_info``.
            InvalidMessage: ``status`` is not ``"NNN Reason"``, or ``headers`` is not a list
                of ``(str, str)`` pairs.
        """
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle, as the PEP advises
        elif self.status is not None:
            raise UnexpectedMessage("start_response() called a second time without exc_info")
        self.status = _status_code(status)
        self.headers = _encode_headers(headers)
        return self._write


def _status_code(status: object) -> int:
    if not isinstance(status, str):
        raise InvalidMessage(f"WSGI status must be a str like '200 OK', not {status!r}")
    code = status[:3]
    if not (code.isdigit() and code.isascii() and len(status) >= 4 and status[3] == " "):
        raise InvalidMessage(f"WSGI status must be a str like '200 OK', not {status!r}")
    return int(code)


def _encode_headers(headers: object) -> list[tuple[bytes, bytes]]:
    if not isinstance(headers, list):
        raise InvalidMessage(f"WSGI response headers must be a list, not {type(headers)!r}")
    encoded = []
    for pair in headers:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise InvalidMessage(f"WSGI response header must be a (str, str) tuple: {pair!r}")
        try:
            # Whitespace around a field value is not part of it (RFC 9110 5.5); Django's
            # cookies come as ("Set-Cookie", " name=value"), as gunicorn serves them.
            encoded.append((pair[0].encode("latin-1"), pair[1].strip(" \t").encode("latin-1")))
        except UnicodeEncodeError:
            raise InvalidMessage(f"WSGI response header is not latin-1: {pair!r}") from None
    return encoded


class ErrorStream:
    """``wsgi.errors`` (PEP 3333, "Input and Error Streams"): a text stream whose every
    complete line is logged at ERROR on ``trio_asgi.error``; ``flush()`` logs a partial
    line."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            error_logger.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            error_logger.error("%s", self._pending)
            self._pending = ""


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File Handling"): a
    binary file-like object as an iterable of blocks of ``block_size`` bytes, whose
    ``close()`` closes the file (the server calls it when the response ends)."""

    __slots__ = ("block_size", "filelike")

    def __init__(self, filelike: IO[bytes], block_size: int = FILE_WRAPPER_BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        while block := self.filelike.read(self.block_size):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()
