"""Validation of the messages an app passes to ``send()``: pure functions, no trio.

Each checker takes the message dict and returns plain values, or raises
:class:`~trio_asgi.InvalidMessage` with a message that names the key and what it must be
(ASGI HTTP spec 2.5, "Response Start" and "Response Body"; the WebSocket denial response
reuses them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .._errors import InvalidMessage

__all__ = [
    "FIELD_NAME",
    "FIELD_VALUE",
    "FramingError",
    "check_message_type",
    "check_response_body",
    "check_response_start",
]

#: RFC 9110 section 5.1: field-name = token.
FIELD_NAME: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
#: RFC 9110 section 5.5: field-value = *field-content, made of VCHAR / obs-text with single
#: SP/HTAB runs inside (none at either end); so no CR, LF or NUL.
FIELD_VALUE: Final = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")


class FramingError(ValueError):
    """A response the writer cannot serialise: a bad header, or a body that does not match
    its ``Content-Length``. Nothing of the offending call was serialised."""


def check_message_type(message: Any) -> str:
    """The ``type`` of an ASGI message the app sent.

    Raises:
        InvalidMessage: ``message`` is not a mapping with a ``type`` key.
    """
    try:
        return str(message["type"])
    except (KeyError, TypeError):
        raise InvalidMessage(
            f"an ASGI message must be a dict with a 'type' key, not {message!r}"
        ) from None


def check_response_start(message: Mapping[str, Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Validate an ``http.response.start`` message and return ``(status, headers)``.

    Args:
        message: the dict the app passed to ``send()``, whose ``type`` has been checked.

    Returns:
        the status code and the headers as a new list of ``(name, value)`` byte pairs.

    Raises:
        InvalidMessage: ``status`` is missing or not an int from 200 to 599 (1xx responses
            are not sent with this message), or ``headers`` is not an iterable of
            ``[name, value]`` pairs of bytes.
    """
    kind = message.get("type", "http.response.start")  # or websocket.http.response.start
    status = message.get("status")
    if type(status) is not int or not 200 <= status <= 599:
        raise InvalidMessage(f"{kind!r} needs 'status', an int from 200 to 599, not {status!r}")
    raw_headers = message.get("headers", ())
    try:
        headers = [(name, value) for name, value in raw_headers]
    except (TypeError, ValueError):
        raise InvalidMessage(
            f"{kind!r} 'headers' must be an iterable of [name, value] pairs "
            f"of bytes, not {raw_headers!r}"
        ) from None
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise InvalidMessage(
                f"{kind!r} header names and values must be bytes, not [{name!r}, {value!r}]"
            )
    return status, headers


def check_response_body(message: Mapping[str, Any]) -> tuple[bytes, bool]:
    """Validate an ``http.response.body`` message and return ``(body, more_body)``.

    Raises:
        InvalidMessage: ``body`` is not bytes-like or ``more_body`` is not a bool.
    """
    body = message.get("body", b"")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidMessage(
            f"'http.response.body' 'body' must be bytes, not {type(body).__name__}"
        )
    more_body = message.get("more_body", False)
    if not isinstance(more_body, bool):
        raise InvalidMessage(f"'http.response.body' 'more_body' must be a bool, not {more_body!r}")
    return bytes(body), more_body
