"""Sans-IO pieces of the WebSocket session: ASGI ``websocket.send``/``close`` messages to
wsproto events or frame bytes, the HTTP answer to a malformed handshake, and the close codes
the server uses (RFC 6455 section 7.4.1; who sends which is in ``session.py``'s docstring).

:func:`data_frame` builds a data frame itself (RFC 6455 section 5.2) when no extension is in
use, byte for byte what wsproto writes (docs/performance.md: cheaper than through wsproto).
No trio here.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from wsproto.events import BytesMessage, RejectConnection, TextMessage
from wsproto.utilities import RemoteProtocolError

from .._errors import InvalidMessage
from .._types import Message

__all__ = [
    "CLOSE_ABNORMAL",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_NORMAL",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOO_BIG",
    "close_args",
    "data_event",
    "data_frame",
    "reject_handshake",
]

CLOSE_NORMAL: Final = 1000
CLOSE_ABNORMAL: Final = 1006  # never sent: reported when the TCP connection just dropped
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_SERVICE_RESTART: Final = 1012


def reject_handshake(exc: RemoteProtocolError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The HTTP answer to a malformed handshake: ``(status, headers, body)``.

    wsproto's ``event_hint`` says which (400, or 426 with ``Sec-WebSocket-Version: 13``);
    the body is its one-line reason, e.g. ``Missing header, 'Sec-WebSocket-Key'``.
    """
    hint = exc.event_hint
    status = hint.status_code if isinstance(hint, RejectConnection) else 400
    headers = list(hint.headers) if isinstance(hint, RejectConnection) else []
    return status, headers, f"{exc}\n".encode()


def data_event(message: Message) -> TextMessage | BytesMessage:
    text: Any = message.get("text")
    data: Any = message.get("bytes")
    if (text is None) == (data is None):
        raise InvalidMessage(
            "'websocket.send' needs exactly one of 'text' (str) and 'bytes' (bytes) "
            f"that is not None, not text={text!r} bytes={data!r}"
        )
    if text is not None:
        if not isinstance(text, str):
            raise InvalidMessage(f"'websocket.send' 'text' must be a str, not {text!r}")
        return TextMessage(data=text)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidMessage(f"'websocket.send' 'bytes' must be bytes, not {data!r}")
    return BytesMessage(data=bytes(data))


def data_frame(message: Message) -> bytes:
    """A ``websocket.send`` message as one unmasked, unfragmented frame (RFC 6455 section 5.2):
    FIN set, no RSV bits (no extension is in use), opcode 1 (text) or 2 (binary).

    Raises:
        InvalidMessage: as :func:`data_event`.
    """
    text: Any = message.get("text")
    if text is not None and message.get("bytes") is None and type(text) is str:
        payload = text.encode("utf-8")
        opcode = 0x81
    else:
        event = data_event(message)  # validates, and raises for a bad message
        if isinstance(event, TextMessage):  # pragma: no cover - str subclasses only
            payload, opcode = event.data.encode("utf-8"), 0x81
        else:
            payload, opcode = bytes(event.data), 0x82
    size = len(payload)
    if size < 126:
        return bytes((opcode, size)) + payload
    if size < 65536:
        return _HEADER_16.pack(opcode, 126, size) + payload
    return _HEADER_64.pack(opcode, 127, size) + payload


_HEADER_16: Final = struct.Struct("!BBH")
_HEADER_64: Final = struct.Struct("!BBQ")


def close_args(message: Message) -> tuple[int, str]:
    code = message.get("code", CLOSE_NORMAL)
    reason = message.get("reason") or ""
    if type(code) is not int:
        raise InvalidMessage(f"'websocket.close' 'code' must be an int, not {code!r}")
    if not isinstance(reason, str):
        raise InvalidMessage(f"'websocket.close' 'reason' must be a str, not {reason!r}")
    return code, reason
