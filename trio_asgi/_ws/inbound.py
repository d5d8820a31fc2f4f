"""The received side of a WebSocket's message channel, sans-IO: wsproto's data events
joined into ASGI ``websocket.receive`` messages and queued for the app, within limits.

Limits (RFC 6455 section 10.4), kept by :class:`InboundMessages`:

- A message is refused (``add`` returns ``TOO_BIG``; the caller closes with 1009) once it
  counts more than ``ws_max_size`` bytes: its payload (UTF-8 bytes for text), after
  decompression, where every frame but a message's last counts as at least
  ``FRAGMENT_MIN_SIZE`` bytes, so a flood of empty fragments reaches the limit as the bytes
  it sends do. Fragments are joined as they arrive, into one ``bytearray`` (text as UTF-8),
  never kept as separate objects.
- The queue is full (:meth:`InboundMessages.full`: the reader stops parsing) while
  ``ws_max_queue`` messages wait for the app's ``receive()``, or while those and the
  message being received hold ``ws_max_size`` bytes.

No trio here: the reader task that feeds it and the wake-ups are ``protocol.py``'s.
"""

from __future__ import annotations

from collections import deque
from typing import Final, cast

from wsproto.events import BytesMessage, TextMessage

from .._types import Message

__all__ = ["FRAGMENT_MIN_SIZE", "TOO_BIG", "InboundMessages"]

FRAGMENT_MIN_SIZE: Final = 6  # bytes every frame but a message's last counts as at least
TOO_BIG: Final = -1  # what add() returns for a piece that takes its message over the limit


class InboundMessages:
    """The message being received and the whole ones waiting for the app.

    Args:
        max_size: ``ws_max_size``, in bytes.
        max_queue: ``ws_max_queue``, in messages.

    Attributes:
        received: ``(message, its counted size)`` pairs, oldest first.
        queued_size: counted bytes of the messages in ``received``.
    """

    __slots__ = (
        "_fragments",
        "_frame_size",
        "_max_queue",
        "_max_size",
        "_message_size",
        "queued_size",
        "received",
    )

    def __init__(self, max_size: int, max_queue: int) -> None:
        self._max_size = max_size
        self._max_queue = max_queue
        self.received: deque[tuple[Message, int]] = deque()
        self.queued_size = 0
        self._fragments: bytearray | None = None  # the message so far (text as UTF-8)
        self._message_size = 0  # counted bytes of the message in progress
        self._frame_size = 0  # payload bytes of the frame in progress

    def full(self) -> bool:
        """Whether parsing waits for the app: ``ws_max_queue`` messages wait for it, or the
        waiting messages and the one being received hold ``ws_max_size`` bytes.

        With nothing queued, the message in progress may grow to ``ws_max_size`` (the app
        has nothing to take); so a connection holds at most about ``2 * ws_max_size`` bytes
        of messages, the copy that ends a fragmented message included.
        """
        queued = self.queued_size
        return len(self.received) >= self._max_queue or (
            queued > 0 and queued + self._message_size >= self._max_size
        )

    def add(self, event: BytesMessage | TextMessage) -> int:
        """Count and join one piece of a data message; queue the message when it is complete.

        Returns:
            the piece's size in bytes (UTF-8 for text), or ``TOO_BIG`` if it takes the
            message over ``ws_max_size`` (the message is then the caller's to refuse and
            :meth:`drop`).
        """
        data = event.data
        if type(data) is str:
            text = True
            size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        else:
            text = False
            size = len(data)
        counted = self._message_size + size
        if not event.frame_finished:
            self._frame_size += size
        elif not event.message_finished:
            # A fragment: it counts as at least FRAGMENT_MIN_SIZE bytes, so a flood of
            # empty or tiny fragments reaches ws_max_size as the bytes it sends do.
            frame_size = self._frame_size + size
            if frame_size < FRAGMENT_MIN_SIZE:
                counted += FRAGMENT_MIN_SIZE - frame_size
            self._frame_size = 0
        if counted > self._max_size:
            return TOO_BIG
        fragments = self._fragments
        if event.message_finished:
            message: str | bytes | bytearray
            if fragments is None:  # a message in one piece: no copy, no join
                message = data
            elif text:
                fragments += cast(str, data).encode("utf-8")
                message = fragments.decode("utf-8")  # wsproto checked it, piece by piece
            else:
                fragments += cast(bytes, data)
                message = bytes(fragments)
            self._fragments = None
            self._message_size = 0
            self._frame_size = 0
            key = "text" if text else "bytes"
            self.received.append(({"type": "websocket.receive", key: message}, counted))
            self.queued_size += counted
        else:
            # Joined as they arrive. Text as UTF-8: a str may take 4 bytes a character.
            if fragments is None:
                fragments = self._fragments = bytearray()
            fragments += cast(str, data).encode("utf-8") if text else cast(bytes, data)
            self._message_size = counted
        return size

    def drop(self) -> None:
        """Forget the message in progress (it was refused, or nothing more is parsed)."""
        self._fragments = None
