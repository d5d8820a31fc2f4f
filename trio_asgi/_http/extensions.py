"""The ASGI HTTP extensions the server honours (asgiref ``docs/extensions.rst``): the
checks of ``http.response.trailers`` and ``http.response.early_hint``, pure functions, no
trio; ``http.response.pathsend`` and ``http.response.zerocopysend`` are ``files.py``'s.

- :func:`http_extensions`: what an ``http`` scope advertises. The file extensions on every
  request; trailers and early hints need HTTP/1.1 (trailers ride on chunked encoding, RFC
  9112 section 7.1.2; a 1xx must not go to an HTTP/1.0 client, RFC 8297 section 2 and RFC
  9110 section 15.2), so an HTTP/1.0 request gets neither.
- :func:`accepts_trailers`: the request said ``TE: trailers`` (RFC 9110 section 10.1.4);
  without it the spec has the server drop the trailers.
- :func:`check_response_trailers`, :func:`check_early_hint`, :func:`check_trailers_flag`:
  the messages' shapes, raising :class:`~trio_asgi.InvalidMessage`.
- :class:`Trailers`: one response's trailer section, from ``trailers: True`` in the start
  to the last ``http.response.trailers`` (``more_trailers`` False), which completes the
  response; :func:`early_hint_links`: whether an early hint can still go out.

``RequestCycle.send`` (``exchange.py``) drives them; the bytes are ``_h11/response.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._errors import InvalidMessage, UnexpectedMessage
from .._logging import error_logger
from .messages import FIELD_NAME, FIELD_VALUE

__all__ = [
    "EARLY_HINT",
    "FORBIDDEN_TRAILERS",
    "PATHSEND",
    "TRAILERS",
    "ZEROCOPYSEND",
    "Trailers",
    "accepts_trailers",
    "check_early_hint",
    "check_response_trailers",
    "check_trailers_flag",
    "early_hint_links",
    "http_extensions",
]

TRAILERS: Final = "http.response.trailers"
EARLY_HINT: Final = "http.response.early_hint"
PATHSEND: Final = "http.response.pathsend"  # files.py
ZEROCOPYSEND: Final = "http.response.zerocopysend"  # files.py

#: Fields a trailer section must not carry (RFC 9110 section 6.5.1: framing, routing,
#: connection control, authentication, request modifiers, response controls and content
#: format are needed before the content; the list RFC 7230 section 4.1.2 gave, as Go's
#: net/http refuses them, plus ``Upgrade``).
FORBIDDEN_TRAILERS: Final = frozenset(
    {
        b"authorization",
        b"cache-control",
        b"connection",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"content-type",
        b"expect",
        b"host",
        b"keep-alive",
        b"max-forwards",
        b"pragma",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"range",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"www-authenticate",
    }
)


def http_extensions(http_version: bytes) -> dict[str, Any]:
    """The ``extensions`` of an ``http`` scope for a request of ``http_version``: a new dict
    each time (the app may change it). ``http.response.pathsend`` and
    ``http.response.zerocopysend`` (``files.py``) on every request; ``http.response.trailers``
    and ``http.response.early_hint`` on HTTP/1.1 (and a higher 1.x, served as 1.1) only."""
    if http_version == b"1.0":
        return {PATHSEND: {}, ZEROCOPYSEND: {}}
    return {PATHSEND: {}, ZEROCOPYSEND: {}, TRAILERS: {}, EARLY_HINT: {}}


def accepts_trailers(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether request ``headers`` (lowercased names) say ``TE: trailers`` (RFC 9110
    section 10.1.4: the ``trailers`` member of the comma-separated list, in any case)."""
    for name, value in headers:
        if name == b"te":
            for member in value.split(b","):
                if member.partition(b";")[0].strip().lower() == b"trailers":
                    return True
    return False


def check_trailers_flag(message: Mapping[str, Any]) -> bool:
    """The ``trailers`` key of ``http.response.start``: whether ``http.response.trailers``
    messages follow the body (default False).

    Raises:
        InvalidMessage: ``trailers`` is not a bool.
    """
    trailers = message.get("trailers", False)
    if type(trailers) is not bool:
        raise InvalidMessage(f"'http.response.start' 'trailers' must be a bool, not {trailers!r}")
    return trailers


def check_response_trailers(message: Mapping[str, Any]) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Validate an ``http.response.trailers`` message; return ``(headers, more_trailers)``.

    The fields are checked like response headers (names tokens, values field-values: no CR,
    LF or NUL; RFC 9110 section 5), and those a trailer section must not carry
    (:data:`FORBIDDEN_TRAILERS`, RFC 9110 section 6.5.1) are refused. Names are taken in any
    case, as response header names are.

    Raises:
        InvalidMessage: ``headers`` is not an iterable of ``[name, value]`` byte pairs, a
            field is not valid HTTP or not allowed in trailers, or ``more_trailers`` is not
            a bool.
    """
    raw = message.get("headers", ())
    try:
        headers = [(name, value) for name, value in raw]
    except (TypeError, ValueError):
        raise InvalidMessage(
            "'http.response.trailers' 'headers' must be an iterable of [name, value] pairs "
            f"of bytes, not {raw!r}"
        ) from None
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise InvalidMessage(
                "'http.response.trailers' header names and values must be bytes, "
                f"not [{name!r}, {value!r}]"
            )
        if FIELD_NAME.fullmatch(name) is None:
            raise InvalidMessage(f"'http.response.trailers' has an invalid name {name!r}")
        if FIELD_VALUE.fullmatch(value) is None:
            raise InvalidMessage(
                f"'http.response.trailers' has an invalid value for {name!r}: {value!r}"
            )
        if name.lower() in FORBIDDEN_TRAILERS:
            raise InvalidMessage(
                f"'http.response.trailers' must not carry {name!r} (RFC 9110 section 6.5.1)"
            )
    more = message.get("more_trailers", False)
    if type(more) is not bool:
        raise InvalidMessage(
            f"'http.response.trailers' 'more_trailers' must be a bool, not {more!r}"
        )
    return headers, more


def check_early_hint(message: Mapping[str, Any]) -> list[bytes]:
    """Validate an ``http.response.early_hint`` message and return its ``links``: the
    ``Link`` field values (RFC 8288) of the ``103 Early Hints`` response, in order.

    Raises:
        InvalidMessage: ``links`` is missing, not an iterable of bytes (a lone bytes value
            is refused, not split into its bytes), or a link is not a valid field value
            (RFC 9110 section 5.5: no CR, LF or NUL) or is empty.
    """
    raw = message.get("links")
    if raw is None or isinstance(raw, (bytes, str)):
        raise InvalidMessage(
            f"'http.response.early_hint' needs 'links', an iterable of bytes, not {raw!r}"
        )
    try:
        links = list(raw)
    except TypeError:
        raise InvalidMessage(
            f"'http.response.early_hint' 'links' must be an iterable of bytes, not {raw!r}"
        ) from None
    for link in links:
        if not isinstance(link, bytes) or not link or FIELD_VALUE.fullmatch(link) is None:
            raise InvalidMessage(f"'http.response.early_hint' has an invalid link {link!r}")
    return links


def early_hint_links(
    message: Mapping[str, Any], http_version: bytes, head_written: bool
) -> list[bytes] | None:
    """The ``Link`` values of an ``http.response.early_hint`` to send as ``103 Early
    Hints``, or None to ignore it (logged at DEBUG), as the spec lets a server: for an
    HTTP/1.0 request (RFC 8297 section 2: no 1xx to HTTP/1.0 clients) and once the final
    response's head is written (HTTP/1.1 sends interim responses before it; the spec's
    "before the final Response Body message" is kept while the head is held, up to the
    first body message).

    Raises:
        InvalidMessage: the message is malformed (:func:`check_early_hint`), also when it
            would be ignored.
    """
    links = check_early_hint(message)
    if http_version == b"1.0" or head_written:
        why = "HTTP/1.0 request" if http_version == b"1.0" else "the response head is written"
        error_logger.debug("'http.response.early_hint' ignored: %s", why)
        return None
    return links


class Trailers:
    """The trailer section of one response whose ``http.response.start`` said
    ``trailers: True`` (asgiref extensions, "HTTP Trailers").

    After the last body message the response is not complete: it completes with the
    ``http.response.trailers`` whose ``more_trailers`` is False. The fields are written
    after the last chunk (RFC 9112 section 7.1.2) only if the body is chunked and the client
    said ``TE: trailers`` (RFC 9110 section 10.1.4); otherwise (a ``Content-Length``, an
    HTTP/1.0 or bodiless response, or no ``TE: trailers``) they are checked, accepted and
    dropped, the body's end going out with the last body message, logged once at DEBUG.

    Attributes:
        fields: the trailer fields to write, in the order sent.
        send: the fields will be written (known once the body ended).
        body_done: the last body message was sent.
    """

    __slots__ = ("body_done", "fields", "send")

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self.send = False
        self.body_done = False

    def end_body(self, chunked: bool, request_headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """The last body message: True if the end of the body waits for the trailers
        (``chunked`` and the request's ``TE: trailers``), False if it goes out now."""
        self.body_done = True
        self.send = chunked and accepts_trailers(request_headers)
        if not self.send:
            why = "the client did not send 'TE: trailers'" if chunked else "the body is not chunked"
            error_logger.debug("HTTP trailers will be dropped: %s", why)
        return self.send

    def add(self, message: Mapping[str, Any]) -> bool:
        """Take one ``http.response.trailers`` message: True if it was the last.

        Raises:
            InvalidMessage: the message is malformed (:func:`check_response_trailers`).
            UnexpectedMessage: the body's last message has not been sent yet.
        """
        if not self.body_done:
            raise UnexpectedMessage(
                "Unexpected ASGI message 'http.response.trailers' sent, "
                "before the last 'http.response.body' message."
            )
        fields, more = check_response_trailers(message)
        if self.send:
            self.fields += fields
        return not more
