"""Serialise HTTP/1.1 responses: the head, the framed body, the end (RFC 9112 sections 4-7).

Sans-IO: :class:`ResponseWriter` turns one ASGI response into bytes and never touches a
socket. The parsers (h11 or httptools, see :mod:`trio_asgi._h11.parsing`) only read requests;
responses are written here, one way for both, so the two parsers answer byte for byte alike.

The rules, as h11 applies them to the responses it writes (RFC 9112 section 6):

- No body for ``HEAD`` requests and for 204 and 304 responses (section 6.3); the headers are
  those a ``GET`` would get.
- A ``Content-Length`` from the app is the framing, and the body must match it exactly.
- Without one, an HTTP/1.1 client gets ``Transfer-Encoding: chunked`` (section 7.1); an
  HTTP/1.0 client gets the body delimited by the connection's close.
- ``Connection: close`` is added whenever the connection will close after this response.
- Header names must be tokens and values field-values (RFC 9110 section 5); anything else is
  refused before a byte is written.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from .._http.messages import FIELD_NAME, FIELD_VALUE, FramingError
from .._http.request import RequestHead
from .._logging import DateHeader

__all__ = [
    "FramingError",
    "ResponseWriter",
    "ServerHeaders",
    "early_hints",
    "error_response",
    "informational",
    "reason_phrase",
]

_REASONS: Final = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

_DIGITS: Final = re.compile(rb"[0-9]+")
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_CHUNKED: Final = (b"transfer-encoding", b"chunked")
_CLOSE: Final = (b"connection", b"close")
_LAST_CHUNK: Final = b"0\r\n\r\n"


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase for ``status`` (``b"OK"``), or ``b""`` for unknown codes."""
    return _REASONS.get(status, b"")


class ResponseWriter:
    """One response: build its head, then frame each body chunk, then end it.

    Args:
        status: the status code, 200 to 999 (1xx responses are written by
            :func:`informational`).
        headers: ``(name, value)`` byte pairs as the app gave them, names in any case; they
            are written in that order and case, after nothing is added but framing and
            ``Connection`` headers. A ``Transfer-Encoding`` from the caller must already be
            removed (the server chooses the framing).
        request_method: the request's method; ``b"HEAD"`` means no body.
        http_version: the request's version, ``b"1.0"``, ``b"1.1"`` or a higher ``b"1.x"``
            (chunked as 1.1); ``None`` for a request that could not be parsed (treated as
            HTTP/1.0: no chunked encoding).
        keep_alive: the connection may serve another request after this one.
        defaults: headers the server adds (``Date``, ``Server``), written first. They are
            the server's own, valid by construction, so they are not checked again; they
            must not include framing (``Content-Length``, ``Transfer-Encoding``) or
            ``Connection``.

    Attributes:
        head: the serialised status line and header section, ``\\r\\n\\r\\n`` included.
        keep_alive: False if the connection must close after this response (the head then
            says ``Connection: close``).
        no_body: the response has no body; body bytes given to :meth:`body` are dropped.

    Raises:
        FramingError: a header name is not a token, a value is not a field-value, or
            ``Content-Length`` is not a non-negative integer (or several that differ).
    """

    __slots__ = ("_chunked", "_remaining", "head", "keep_alive", "no_body")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        *,
        request_method: bytes | None,
        http_version: bytes | None,
        keep_alive: bool,
        defaults: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        content_length: bytes | None = None
        connection_tokens: list[bytes] | None = None  # the app's Connection header, if any
        token = FIELD_NAME.fullmatch
        field_value = FIELD_VALUE.fullmatch
        for name, value in headers:
            if token(name) is None:
                raise FramingError(f"invalid header name {name!r}")
            if field_value(value) is None:
                raise FramingError(f"invalid value for header {name!r}: {value!r}")
            lower = name.lower()
            if lower == b"content-length":
                length = _content_length(value)
                if content_length is not None and length != content_length:
                    raise FramingError("conflicting Content-Length headers")
                content_length = length
            elif lower == b"connection":
                tokens = [token.strip() for token in value.lower().split(b",")]
                connection_tokens = (connection_tokens or []) + tokens
        self.no_body = status in _NO_BODY_STATUSES or request_method == b"HEAD"
        self._chunked = False
        self._remaining = -1  # bytes of body still owed to Content-Length; -1: not counted
        extra: list[tuple[bytes, bytes]] = []
        if status not in _NO_BODY_STATUSES:
            if content_length is not None:
                if not self.no_body:
                    self._remaining = int(content_length)
            elif http_version is not None and http_version >= b"1.1":
                # A higher 1.x is served as 1.1 (RFC 9110 section 2.5): chunked it can read.
                extra.append(_CHUNKED)
                self._chunked = not self.no_body
            elif request_method != b"HEAD":
                keep_alive = False  # an HTTP/1.0 body of unknown length ends with the close
        if connection_tokens is not None and b"close" in connection_tokens:
            keep_alive = False
        elif not keep_alive:
            if connection_tokens is None:
                extra.append(_CLOSE)
            else:  # merge into the app's header, as h11 does: close replaces keep-alive
                tokens = sorted({t for t in connection_tokens if t and t != b"keep-alive"})
                headers = [(n, v) for n, v in headers if n.lower() != b"connection"]
                extra.append((b"connection", b", ".join([*tokens, b"close"])))
        self.keep_alive = keep_alive
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
        if defaults:
            lines += [name + b": " + value + b"\r\n" for name, value in defaults]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines += [name + b": " + value + b"\r\n" for name, value in extra]
        lines.append(b"\r\n")
        self.head = b"".join(lines)

    def body(self, data: bytes) -> bytes:
        """Frame one chunk of body: a chunk for chunked encoding, else ``data`` as is.

        Raises:
            FramingError: ``data`` runs past the declared ``Content-Length``.
        """
        if self.no_body or not data:
            return b""
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        if self._remaining >= 0:
            if len(data) > self._remaining:
                raise FramingError("Too much data for declared Content-Length")
            self._remaining -= len(data)
        return data

    @property
    def chunked(self) -> bool:
        """The body is chunked, so a trailer section can follow it (RFC 9112 7.1.2)."""
        return self._chunked

    def frame_around(self, size: int) -> tuple[bytes, bytes]:
        """The bytes before and after ``size`` bytes of body the caller writes itself (a
        file the kernel sends): the chunk-size line and its CRLF for chunked encoding
        (RFC 9112 section 7.1), else nothing. Counted against ``Content-Length`` as
        :meth:`body` counts; with :attr:`no_body` the caller sends nothing at all.

        Raises:
            FramingError: ``size`` bytes run past the declared ``Content-Length``.
        """
        if self.no_body or size == 0:
            return b"", b""
        if self._chunked:
            return b"%x\r\n" % size, b"\r\n"
        if self._remaining >= 0:
            if size > self._remaining:
                raise FramingError("Too much data for declared Content-Length")
            self._remaining -= size
        return b"", b""

    def end(self, trailers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """The end of the body: the last chunk for chunked encoding, else nothing.

        ``trailers`` (already checked: valid fields, none that trailers must not carry)
        become the trailer section after the last chunk (RFC 9112 section 7.1.2), in order
        and case; a response that is not chunked cannot carry them, and drops them.

        Raises:
            FramingError: fewer bytes than the declared ``Content-Length`` were sent.
        """
        if self._chunked:
            if trailers:
                lines = [name + b": " + value + b"\r\n" for name, value in trailers]
                return b"0\r\n" + b"".join(lines) + b"\r\n"
            return _LAST_CHUNK
        if self._remaining > 0:
            raise FramingError("Too little data for declared Content-Length")
        return b""


def informational(status: int) -> bytes:
    """A 1xx response head with no headers, e.g. ``HTTP/1.1 100 Continue`` (RFC 9110 15.2)."""
    return b"HTTP/1.1 %d %s\r\n\r\n" % (status, reason_phrase(status))


def early_hints(links: list[bytes]) -> bytes:
    """A ``103 Early Hints`` response with one ``Link`` header per value of ``links``
    (RFC 8297 section 2), each already checked as a field value."""
    lines = [b"link: " + link + b"\r\n" for link in links]
    return b"HTTP/1.1 103 Early Hints\r\n" + b"".join(lines) + b"\r\n"


def _content_length(value: bytes) -> bytes:
    """The one length a ``Content-Length`` value gives (``b"13"``, or ``b"13, 13"``)."""
    if value.isdigit():  # the usual case: one plain number
        return value.lstrip(b"0") or b"0"
    values = {part.strip() for part in value.split(b",")} if b"," in value else {value}
    if len(values) != 1:
        raise FramingError(f"conflicting Content-Length values {value!r}")
    (length,) = values
    if _DIGITS.fullmatch(length) is None:
        raise FramingError(f"invalid Content-Length {value!r}")
    return length.lstrip(b"0") or b"0"


SERVER_HEADER: Final = (b"server", b"trio-asgi")


class ServerHeaders:
    """The headers the server adds to a response that lacks them (one instance per server):
    ``Date`` (RFC 9110 section 6.6.1, formatted at most once a second) and
    ``Server: trio-asgi``, each only if configured.

    Args:
        date: add ``Date``.
        server: add ``Server``.
    """

    __slots__ = ("_date", "_server")

    def __init__(self, *, date: bool, server: bool) -> None:
        self._date = DateHeader() if date else None
        self._server = server

    def missing_from(self, names: set[bytes]) -> list[tuple[bytes, bytes]]:
        """The headers to add to a response whose lowercased header names are ``names``."""
        defaults: list[tuple[bytes, bytes]] = []
        if self._date is not None and b"date" not in names:
            defaults.append((b"date", self._date.value()))
        if self._server and b"server" not in names:
            defaults.append(SERVER_HEADER)
        return defaults

    def response(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        *,
        request: RequestHead | None,
        keep_alive: bool,
    ) -> ResponseWriter:
        """The :class:`ResponseWriter` for the app's ``status`` and ``headers`` answering
        ``request`` (None: bytes that never parsed as one), with the server's headers
        added. An app's ``Transfer-Encoding`` is dropped: the server chooses the framing
        (ASGI HTTP spec, "Response Start"). ``keep_alive``: the server would keep the
        connection open; the request and the headers may still close it.

        Raises:
            FramingError: a header name or value is not valid HTTP (RFC 9110 section 5).
        """
        names = {name.lower() for name, _ in headers}
        if b"transfer-encoding" in names:
            headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        return ResponseWriter(
            status,
            headers,
            request_method=None if request is None else request.method,
            http_version=None if request is None else request.http_version,
            keep_alive=(request is None or request.keep_alive) and keep_alive,
            defaults=self.missing_from(names),
        )


def error_response(
    status: int, extra_headers: list[tuple[bytes, bytes]] | None, body: bytes | None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of an error response the server writes itself: ``body`` (by
    default one line of text, the status and its reason phrase) as ``text/plain``, after
    ``extra_headers``."""
    if body is None:
        body = f"{status} {(reason_phrase(status) or b'Error').decode()}\n".encode()
    headers = [
        *(extra_headers or ()),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    return headers, body
