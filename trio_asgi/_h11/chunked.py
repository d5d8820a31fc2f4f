"""Sans-IO decoding of a chunked request body (RFC 9112 section 7.1), strictly.

Both request parsers (:class:`~trio_asgi._h11.parsing.H11Parser` and
:class:`~trio_asgi._h11.httptools.HttptoolsParser`) parse only the head of a chunked
request and hand the bytes after it to one :class:`ChunkedDecoder`: the same grammar and the
same limits with either parser, by construction. The grammar (RFC 9112 sections 7.1-7.1.2,
RFC 9110 section 5.6)::

    chunked-body    = *chunk last-chunk trailer-section CRLF
    chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    chunk-size      = 1*16HEXDIG                  ; at most 16 digits: see below
    last-chunk      = 1*("0") [ chunk-ext ] CRLF
    chunk-ext       = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    chunk-ext-name  = token
    chunk-ext-val   = token / quoted-string
    trailer-section = *( field-line CRLF )
    field-line      = field-name ":" OWS field-value OWS   ; as in a head

The rules it keeps, each refused with :exc:`ChunkedBodyError`:

- **CRLF only.** Every line ends in CRLF; a bare LF or a bare CR anywhere in a chunk line,
  after chunk data, or in a trailer line is a 400, as is any control byte but HTAB.
- **A chunk size has 1 to 16 hex digits** (:data:`MAX_CHUNK_SIZE_DIGITS`), leading zeros
  counted: a value no 64-bit parser can read differently. More digits, no digit,
  whitespace or anything but ``;`` after them is a 400.
- **Chunk extensions are parsed, then ignored.** Anything outside the grammar above (an
  empty name, a space inside a name, a bare CR, NUL, an unterminated quoted string) is a 400.
- **Trailer fields are checked like header fields and then dropped.** A trailer line that
  is not a valid field line (obs-fold, control bytes, no colon, a space before it) is a
  400, and so is a field that frames, routes or controls the message
  (:data:`FORBIDDEN_TRAILERS`: ``Content-Length``, ``Transfer-Encoding``, ``Host``, ...;
  RFC 9110 section 6.5.1).
- **Limits however the bytes arrive.** A chunk line (size, extensions and CRLF) or the
  whole trailer section (its fields and the final CRLF) of more than ``max_line_size``
  bytes is a 431, in one read or in many; a byte that is invalid where it stands is a 400
  as soon as it arrives, without waiting for the line's end. Which of the two a line gets
  depends only on its bytes: an invalid byte within the first ``max_line_size`` bytes
  gives 400, none gives 431.
- **Cheap per chunk.** :meth:`ChunkedDecoder.next_event` returns all the body bytes the
  buffer holds, across any number of chunks, as one ``bytes``: a read of one-byte chunks
  costs one event, not one per chunk.
- **Exact end.** The decoder consumes the body up to its final CRLF and not a byte more:
  what follows in the buffer is the next request's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

__all__ = [
    "FORBIDDEN_TRAILERS",
    "MAX_CHUNK_SIZE_DIGITS",
    "ChunkedBodyError",
    "ChunkedDecoder",
]

MAX_CHUNK_SIZE_DIGITS: Final = 16  # hex digits of a chunk size: a value below 2**64 bytes

#: Trailer fields refused with 400 (lowercase): those that frame the message, route it,
#: or control the connection or the request (RFC 9110 section 6.5.1, RFC 9112 section 7.1.2).
FORBIDDEN_TRAILERS: Final = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"trailer",
        b"te",
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"expect",
        b"content-encoding",
        b"content-type",
        b"content-range",
    }
)

_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED: Final = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
#: A chunk line's extensions, CRLF excluded. Whitespace, ";", "=", tokens and quoted
#: strings are disjoint classes, so a failing match backtracks in linear time.
_CHUNK_EXT: Final = re.compile(
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
_HEX_DIGITS: Final = re.compile(rb"[0-9A-Fa-f]*")
#: A bare chunk-size line, the common case (no extension), CRLF included.
_SIMPLE_SIZE_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,%d})\r\n" % MAX_CHUNK_SIZE_DIGITS)
#: A byte that may never appear inside a chunk line or a trailer line (CR and LF are
#: checked apart: they may end one).
_BAD_LINE_BYTE: Final = re.compile(rb"[^\t\x20-\x7e\x80-\xff]")
_FIELD_LINE: Final = re.compile(
    rb"(" + _TOKEN + rb"):[ \t]*(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?[ \t]*"
)
_NON_TOKEN: Final = re.compile(rb"[^-!#$%&'*+.^_`|~0-9A-Za-z]")

# Where the decoder is in the body.
_SIZE: Final = 0  # at a chunk-size line
_DATA: Final = 1  # inside chunk data
_DATA_END: Final = 2  # at the CRLF after chunk data
_TRAILER: Final = 3  # in the trailer section
_END: Final = 4  # the body is complete
_FAILED: Final = 5  # a ChunkedBodyError was raised


class ChunkedBodyError(Exception):
    """A chunked body that breaks RFC 9112 section 7.1, or a line over the size limit.

    Attributes:
        error_status_hint (int): 400 for malformed framing, 431 for a chunk line or a
            trailer section over ``max_line_size`` bytes.
    """

    def __init__(self, message: str, error_status_hint: int = 400) -> None:
        super().__init__(message)
        self.error_status_hint = error_status_hint


class ChunkedDecoder:
    """A chunked body, decoded from a caller's buffer (sans-IO: no I/O, no trio).

    The caller appends received bytes to a ``bytearray`` and calls :meth:`next_event` with
    it; the decoder removes what it has decoded and leaves the rest.

    Args:
        max_line_size: bytes a chunk line, and the whole trailer section, may have (the
            server passes ``max_header_size``); past it, :exc:`ChunkedBodyError` with 431.
    """

    __slots__ = (
        "_error",
        "_fast",
        "_max_line_size",
        "_remaining",
        "_scanned",
        "_state",
        "_trailer_size",
    )

    def __init__(self, max_line_size: int) -> None:
        self._max_line_size = max_line_size
        # A bare size line (at most 18 bytes) may skip the line machinery if it cannot be
        # over the limit.
        self._fast = max_line_size >= MAX_CHUNK_SIZE_DIGITS + 2
        self._state = _SIZE
        self._remaining = 0  # bytes of the current chunk's data still to come
        self._scanned = 0  # bytes of an incomplete line already checked for a bad byte
        self._trailer_size = 0  # bytes of complete trailer lines already consumed
        self._error: ChunkedBodyError | None = None  # raised at every call once set

    @property
    def complete(self) -> bool:
        """The final CRLF was consumed: the body is over."""
        return self._state == _END

    def next_event(self, buffer: bytearray) -> bytes | bool:
        """Decode what ``buffer`` holds, removing the decoded bytes from it.

        Returns:
            the body bytes (never empty) of every chunk the buffer holds, joined; else
            ``True`` once the body is complete (at every call after that too), or
            ``False`` if more bytes are needed.

        Raises:
            ChunkedBodyError: the body is malformed (400) or a line too long (431); every
                call after that raises it again. Body bytes decoded before the bad byte are
                returned first, and the error raised at the next call.
        """
        if self._error is not None:
            raise self._error
        if self._state == _END:
            return True
        pieces: list[bytearray] = []
        pos = self._decode(buffer, pieces)
        if pos:
            del buffer[:pos]
        if pieces:
            return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)
        if self._error is not None:
            raise self._error
        return self._state == _END

    def _decode(self, buffer: bytearray, pieces: list[bytearray]) -> int:
        """Decode from the start of ``buffer`` as far as it goes, appending chunk data to
        ``pieces``; the bytes consumed. An error is kept in ``_error``."""
        pos = 0
        end = len(buffer)
        state = self._state
        fast = self._fast
        simple_size_line = _SIMPLE_SIZE_LINE.match
        try:
            while pos < end:
                if state == _DATA:
                    take = min(self._remaining, end - pos)
                    pieces.append(buffer[pos : pos + take])
                    pos += take
                    self._remaining -= take
                    if self._remaining:
                        break
                    state = _DATA_END
                elif state == _DATA_END:
                    if buffer[pos] != 0x0D or (pos + 1 < end and buffer[pos + 1] != 0x0A):
                        raise ChunkedBodyError("chunk data not followed by CRLF")
                    if pos + 1 == end:
                        break
                    pos += 2
                    state = _SIZE
                elif state == _SIZE:
                    match = simple_size_line(buffer, pos) if fast else None
                    # The flood case first: whole small chunks, each taken in one step.
                    while match is not None:
                        start = match.end()
                        stop = start + int(match[1], 16)
                        if (
                            stop == start
                            or stop + 2 > end
                            or buffer[stop] != 0x0D
                            or buffer[stop + 1] != 0x0A
                        ):
                            break  # the general steps below take it (or refuse it)
                        pieces.append(buffer[start:stop])
                        pos = stop + 2
                        match = simple_size_line(buffer, pos)
                    if match is not None:
                        size = int(match[1], 16)
                        pos = match.end()
                    else:
                        limit = self._max_line_size
                        line_end = self._line_end(buffer, pos, limit, _size_prefix)
                        if line_end == -1:
                            break
                        size = _size_line(bytes(buffer[pos : line_end - 2]))
                        pos = line_end
                    self._scanned = 0
                    if size:
                        self._remaining = size
                        state = _DATA
                    else:
                        state = _TRAILER
                else:  # _TRAILER
                    budget = self._max_line_size - self._trailer_size
                    line_end = self._line_end(buffer, pos, budget, _trailer_prefix)
                    if line_end == -1:
                        break
                    self._scanned = 0
                    self._trailer_size += line_end - pos
                    if line_end - pos == 2:  # the empty line: the body is over
                        state = _END
                        pos = line_end
                        break
                    _trailer_line(bytes(buffer[pos : line_end - 2]))
                    pos = line_end
        except ChunkedBodyError as exc:
            self._error = exc
            state = _FAILED
        self._state = state
        return pos

    def _line_end(self, buffer: bytearray, pos: int, limit: int, check_prefix: _PrefixCheck) -> int:
        """Where the CRLF-ended line at ``pos`` ends (after its LF), or -1 if it is not all
        here yet. Only the first ``limit`` bytes count: a byte there that cannot stand where
        it is gives 400, and a line longer than ``limit`` with none gives 431."""
        end = len(buffer)
        window = min(end, pos + limit)
        scan_from = pos + self._scanned
        newline = buffer.find(b"\n", scan_from, window)
        stop = window if newline == -1 else newline
        bad = _BAD_LINE_BYTE.search(buffer, scan_from, stop)
        if bad is not None:
            found = bad.start()
            # A CR may only end the line: right before its LF, or last of what has arrived.
            if buffer[found] != 0x0D or found + 1 < stop:
                raise ChunkedBodyError(f"invalid byte {buffer[found : found + 1]!r} in a line")
        check_prefix(buffer, pos, scan_from, stop)
        if newline != -1:
            if newline == pos or buffer[newline - 1] != 0x0D:
                raise ChunkedBodyError("a line ends in a bare LF, not CRLF")
            return newline + 1
        if end >= pos + limit:
            raise ChunkedBodyError(f"a chunk line or trailer section is over {limit} bytes", 431)
        self._scanned = max(0, stop - pos - 1)  # a CR at the end is checked again
        return -1


#: Checks what has arrived of a line: (buffer, line start, start of the bytes not checked
#: before, end of what is here); raises ChunkedBodyError.
_PrefixCheck = Callable[[bytearray, int, int, int], None]


def _size_prefix(buffer: bytearray, pos: int, scan_from: int, stop: int) -> None:
    """Refuse a chunk line whose start is already wrong: no hex digit first, too many
    of them, or something other than BWS, ``;`` or CR after them."""
    digits = _HEX_DIGITS.match(buffer, pos, stop)
    assert digits is not None  # "*" always matches
    after = digits.end()
    count = after - pos
    if count > MAX_CHUNK_SIZE_DIGITS:
        raise ChunkedBodyError(f"a chunk size of more than {MAX_CHUNK_SIZE_DIGITS} hex digits")
    if after < stop and (count == 0 or buffer[after] not in b" \t;\r"):
        raise ChunkedBodyError(f"invalid chunk size line {bytes(buffer[pos:stop])[:40]!r}")


def _size_line(line: bytes) -> int:
    """The size in a complete chunk line (CRLF excluded), its extensions checked."""
    digits = _HEX_DIGITS.match(line)
    assert digits is not None  # "*" always matches
    after = digits.end()
    if after == 0 or after > MAX_CHUNK_SIZE_DIGITS:
        raise ChunkedBodyError(f"invalid chunk size in {line[:40]!r}")
    if _CHUNK_EXT.fullmatch(line, after) is None:
        raise ChunkedBodyError(f"invalid chunk extension in {line[:40]!r}")
    return int(line[:after], 16)


def _trailer_prefix(buffer: bytearray, pos: int, scan_from: int, stop: int) -> None:
    """Refuse a trailer line whose start is already wrong: obs-fold (a line that starts
    with SP or HTAB), or a byte outside token before the colon. Only the bytes from
    ``scan_from`` on are looked at: the first colon of a line does not move."""
    if stop == pos or buffer[pos] == 0x0D:  # the empty line (a bare CR is refused apart)
        return
    colon = buffer.find(b":", pos, stop)
    name_end = stop if colon == -1 else colon
    if scan_from < name_end and _NON_TOKEN.search(buffer, scan_from, name_end) is not None:
        raise ChunkedBodyError("invalid trailer field line (obs-fold or a bad field name)")


def _trailer_line(line: bytes) -> None:
    """Check a complete trailer line (CRLF excluded): a field line, not a framing one."""
    match = _FIELD_LINE.fullmatch(line)
    if match is None:
        raise ChunkedBodyError(f"invalid trailer field line {line[:40]!r}")
    name = match[1].lower()
    if name in FORBIDDEN_TRAILERS:
        raise ChunkedBodyError(f"{name.decode()} is not allowed as a trailer field")
