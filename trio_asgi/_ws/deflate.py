"""permessage-deflate (RFC 7692) that never inflates more than a message may hold.

wsproto's :class:`~wsproto.extensions.PerMessageDeflate` inflates whatever compressed
payload it is handed in one ``zlib`` call without a ``max_length``: 64 KiB of compressed
zeros become ~64 MiB before the server can compare the message with ``ws_max_size``.
:class:`BudgetedPerMessageDeflate` is that extension with one change, on the inbound side
only: every ``decompress`` call gets ``max_length`` = what is left of the message's budget
plus one byte (RFC 6455 section 10.4, RFC 7692 section 7.2.2). Output that reaches the
extra byte means the message is too big: the extension answers
``CloseReason.MESSAGE_TOO_BIG`` (1009), wsproto turns that into a ``CloseConnection``
event, and the compressed input not yet inflated (zlib's ``unconsumed_tail``) is dropped
unread, since the message it belongs to is refused.

Rules this module keeps:

- Negotiation (``offer``, ``accept``, ``finalize``, the window bits and no-context-takeover
  parameters) and the outbound side are wsproto's, inherited unchanged.
- Memory: a message's inflated bytes never exceed ``max_message_size + 1``, whatever its
  compression ratio. A call that stays within the budget consumes all its input (zlib
  stops early only when the output is full), so no input is ever held back.
- CPU: one call inflates at most ``MAX_DEFLATE_RATIO`` bytes per input byte (deflate's
  ceiling, RFC 1951), so a caller that hands wsproto at most N compressed bytes at a time
  bounds the work between two of its checkpoints by ~1032 x N bytes of output. The
  wire side (``protocol.py``) does that; this module is sans-IO and never yields itself.
"""

from __future__ import annotations

import zlib
from typing import Final

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol

__all__ = ["MAX_DEFLATE_RATIO", "BudgetedPerMessageDeflate"]

#: The most bytes one byte of deflate input can inflate to: a length-258 match coded in
#: about 2 bits (RFC 1951 section 3.2.5), so ~1032 bytes of output per input byte.
MAX_DEFLATE_RATIO: Final = 1032

_SYNC_TAIL: Final = b"\x00\x00\xff\xff"  # removed by the sender (RFC 7692 section 7.2.1)


class BudgetedPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a per-message inflation budget.

    Args:
        max_message_size: bytes one inflated message may have (``Config.ws_max_size``).
            The budget of each ``decompress`` call is what is left of it, plus one byte.

    Attributes:
        inflated: bytes inflated so far for the message in progress (0 between messages).

    A message over the budget makes wsproto report ``CloseConnection(code=1009)``; a
    corrupt deflate stream, as in wsproto, ``CloseConnection(code=1007)``.
    """

    def __init__(self, max_message_size: int) -> None:
        super().__init__()
        self.max_message_size = max_message_size
        self.inflated = 0

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate one piece of a frame's payload, within the message's budget.

        Returns:
            the inflated bytes, or ``CloseReason.MESSAGE_TOO_BIG`` /
            ``INVALID_FRAME_PAYLOAD_DATA``, which wsproto turns into a close.
        """
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data  # an uncompressed message: the session counts it
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """End of a frame; at the end of a compressed message, inflate the sync tail.

        As wsproto's, with the budget applied to what the tail and ``flush()`` give.
        """
        if not fin:
            return None
        if not self._inbound_is_compressible or not self._inbound_compressed:
            self._inbound_compressed = None
            return None
        data = self._inflate(_SYNC_TAIL)
        if isinstance(data, CloseReason):
            return data
        decompressor = self._decompressor
        assert decompressor is not None  # set by frame_inbound_header for this message
        try:
            # Nothing is left unconsumed (see _inflate), so flush() has no input to expand.
            rest = decompressor.flush()
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(rest) > self.max_message_size - self.inflated:
            return CloseReason.MESSAGE_TOO_BIG
        no_context_takeover = (
            self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        )
        if no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        self.inflated = 0
        return data + rest if rest else data

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None  # set by frame_inbound_header for this message
        left = self.max_message_size - self.inflated
        if left < 0:
            return CloseReason.MESSAGE_TOO_BIG
        try:
            out = decompressor.decompress(data, left + 1)  # max_length: never 0 (unbounded)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(out) > left:
            # The output filled its budget: the message is too big. Its unconsumed_tail,
            # the compressed input not yet inflated, is never expanded.
            self.inflated = self.max_message_size + 1
            return CloseReason.MESSAGE_TOO_BIG
        self.inflated += len(out)
        return out
