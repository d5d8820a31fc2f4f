"""Tier 1: chunked request bodies, one grammar for both parsers (RFC 9112 section 7.1).

:class:`~trio_asgi._h11.chunked.ChunkedDecoder` is fed bodies directly, and through both
request parsers after a chunked head, whole, cut at every position and one byte at a time
(:func:`tests.proto.test_parsing.assert_parsers_agree`): the events, the status and the bytes
left for the next request must be the same whichever parser runs and however the bytes
arrive. A table holds the valid bodies and each malformed case the decoder refuses; a
naive whole-input decoder written from the ABNF is the oracle for hypothesis-generated
bodies (valid ones from the grammar, mutations of them, and arbitrary bytes).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._h11.chunked import (
    FORBIDDEN_TRAILERS,
    MAX_CHUNK_SIZE_DIGITS,
    ChunkedBodyError,
    ChunkedDecoder,
)
from trio_asgi._h11.httptools import HttptoolsParser
from trio_asgi._h11.parsing import END_OF_MESSAGE, NEED_DATA, H11Parser, RequestHead, RequestParser

from .test_parsing import (
    AFTER_EOF,
    CHUNKED_HEADERS,
    CHUNKED_POST,
    CLOSED,
    DONE,
    EOM,
    GET,
    KIB,
    MAX_HEADER_SIZE,
    PARSERS,
    Transcript,
    assert_parsers_agree,
    error,
    head,
    transcript,
)

Outcome = tuple[Any, ...]


def decode(pieces: list[bytes], limit: int = MAX_HEADER_SIZE, *, eof: bool = False) -> Outcome:
    """Feed ``pieces`` to a decoder: ``("ok", body, rest)`` at the body's end (``rest`` the
    bytes after it), ``("error", status, body)``, or ``("need", body)`` if it wants more.

    Checks the decoder's promises on the way: a body event is never empty, and one call
    returns all the body the buffer holds (a second call without new bytes gives none).
    """
    decoder = ChunkedDecoder(limit)
    buffer = bytearray()
    body: list[bytes] = []
    for index, piece in enumerate(pieces):
        buffer += piece
        previous_was_body = False
        while True:
            try:
                event = decoder.next_event(buffer)
            except ChunkedBodyError as exc:
                with pytest.raises(ChunkedBodyError):  # and for ever after
                    decoder.next_event(buffer)
                return ("error", exc.error_status_hint, b"".join(body))
            if event is True:
                assert decoder.complete
                return ("ok", b"".join(body), bytes(buffer) + b"".join(pieces[index + 1 :]))
            if event is False:
                break
            assert isinstance(event, bytes)
            assert event, "a body event is never empty"
            assert not previous_was_body, "one call returns all the body the buffer holds"
            previous_was_body = True
            body.append(event)
    if eof:
        return ("eof", b"".join(body))
    return ("need", b"".join(body))


def arrivals(data: bytes) -> list[list[bytes]]:
    """Whole, one byte at a time, and cut in two at every position."""
    if not data:
        return [[]]
    return [
        [data],
        [bytes([byte]) for byte in data],
        *([data[:cut], data[cut:]] for cut in range(1, len(data))),
    ]


def assert_same_however_it_arrives(data: bytes, limit: int = MAX_HEADER_SIZE) -> Outcome:
    whole = decode([data], limit)
    for pieces in arrivals(data)[1:]:
        assert decode(pieces, limit) == whole, [len(piece) for piece in pieces]
    return whole


def chunked_request(body: bytes) -> Transcript:
    """What both parsers give for a chunked POST with ``body``, however it arrives."""
    return assert_parsers_agree(CHUNKED_POST + body)


def body_head(body: bytes) -> tuple[Any, ...]:
    return head(b"POST", headers=CHUNKED_HEADERS, trailing=body)


# -- the table -------------------------------------------------------------------------------

VALID = [
    pytest.param(b"3\r\nabc\r\n0\r\n\r\n", b"abc", id="one-chunk"),
    pytest.param(b"0\r\n\r\n", b"", id="empty-body"),
    pytest.param(b"000\r\n\r\n", b"", id="last-chunk-of-several-zeros"),
    pytest.param(b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", b"0123456789" * 2, id="hex"),
    pytest.param(b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc", id="16-hex-digits"),
    pytest.param(b"3;a=b;c\r\nabc\r\n0;x=y\r\n\r\n", b"abc", id="extensions"),
    pytest.param(b"3 ; a = b ;\tc\r\nabc\r\n0\r\n\r\n", b"abc", id="extensions-with-bws"),
    pytest.param(b'3;a="b \\" ;c"\r\nabc\r\n0\r\n\r\n', b"abc", id="extension-quoted-string"),
    pytest.param(b'3;a=""\r\nabc\r\n0\r\n\r\n', b"abc", id="extension-empty-quoted-string"),
    pytest.param(b'3;a="\xff"\r\nabc\r\n0\r\n\r\n', b"abc", id="extension-obs-text"),
    pytest.param(b"3\r\nabc\r\n0\r\nX-T: 1\r\nY:\r\nZ:  a b \r\n\r\n", b"abc", id="trailers"),
    pytest.param(b"3\r\nabc\r\n0\r\nX-T: \xc3\xa9\r\n\r\n", b"abc", id="trailer-obs-text"),
    pytest.param(b"5\r\n0\r\n\r\n\r\n0\r\n\r\n", b"0\r\n\r\n", id="data-that-looks-like-the-end"),
    pytest.param(b"1\r\na\r\n" * 100 + b"0\r\n\r\n", b"a" * 100, id="many-small-chunks"),
]

MALFORMED = [
    # chunk-size (RFC 9112 section 7.1)
    pytest.param(b"zz\r\nab\r\n0\r\n\r\n", b"", id="size-not-hex"),
    pytest.param(b"\r\nab\r\n0\r\n\r\n", b"", id="size-empty"),
    pytest.param(b"-3\r\nabc\r\n0\r\n\r\n", b"", id="size-negative"),
    pytest.param(b"+3\r\nabc\r\n0\r\n\r\n", b"", id="size-plus"),
    pytest.param(b"0x3\r\nabc\r\n0\r\n\r\n", b"", id="size-0x"),
    pytest.param(b" 3\r\nabc\r\n0\r\n\r\n", b"", id="size-leading-space"),
    pytest.param(b"3 \r\nabc\r\n0\r\n\r\n", b"", id="size-then-space"),
    pytest.param(b"3\t\r\nabc\r\n0\r\n\r\n", b"", id="size-then-tab"),
    pytest.param(b"1" + b"0" * 16 + b"\r\n", b"", id="size-2**64"),
    pytest.param(b"f" * 17 + b"\r\n", b"", id="size-17-digits"),
    pytest.param(b"0" * 16 + b"3\r\nabc\r\n0\r\n\r\n", b"", id="size-17-digits-leading-zeros"),
    # chunk-ext (RFC 9112 section 7.1.1)
    pytest.param(b"3;\r\nabc\r\n0\r\n\r\n", b"", id="ext-empty"),
    pytest.param(b"3;a b\r\nabc\r\n0\r\n\r\n", b"", id="ext-space-in-name"),
    pytest.param(b"3;=b\r\nabc\r\n0\r\n\r\n", b"", id="ext-no-name"),
    pytest.param(b"3;a=\r\nabc\r\n0\r\n\r\n", b"", id="ext-no-value"),
    pytest.param(b"3;a=b c\r\nabc\r\n0\r\n\r\n", b"", id="ext-space-in-value"),
    pytest.param(b"3;a\rb\r\nabc\r\n0\r\n\r\n", b"", id="ext-bare-CR"),
    pytest.param(b"3;a\nabc\r\n0\r\n\r\n", b"", id="ext-bare-LF"),
    pytest.param(b"3;a\x00\r\nabc\r\n0\r\n\r\n", b"", id="ext-NUL"),
    pytest.param(b"3;a\x7f\r\nabc\r\n0\r\n\r\n", b"", id="ext-DEL"),
    pytest.param(b"3;a@b\r\nabc\r\n0\r\n\r\n", b"", id="ext-separator-in-name"),
    pytest.param(b'3;a="b\r\nabc\r\n0\r\n\r\n', b"", id="ext-unterminated-quoted-string"),
    pytest.param(b'3;a="\x01"\r\nabc\r\n0\r\n\r\n', b"", id="ext-control-in-quoted-string"),
    pytest.param(b"3;a=\xff\r\nabc\r\n0\r\n\r\n", b"", id="ext-obs-text-outside-quotes"),
    pytest.param(b"0;a b\r\n\r\n", b"", id="last-chunk-ext-malformed"),
    # line ends: CRLF only
    pytest.param(b"3\nabc\r\n0\r\n\r\n", b"", id="size-line-bare-LF"),
    pytest.param(b"3\rabc\r\n0\r\n\r\n", b"", id="size-line-bare-CR"),
    pytest.param(b"3\r\nabc\n0\r\n\r\n", b"abc", id="data-then-bare-LF"),
    pytest.param(b"3\r\nabc\rX0\r\n\r\n", b"abc", id="data-then-bare-CR"),
    pytest.param(b"3\r\nabcX\r\n0\r\n\r\n", b"abc", id="data-longer-than-its-size"),
    pytest.param(b"0\r\n\n" + GET, b"", id="last-chunk-then-bare-LF"),
    pytest.param(b"0\r\n\r" + GET, b"", id="last-chunk-then-bare-CR"),
    # trailer-section (RFC 9112 section 7.1.2)
    pytest.param(b"0\r\nX-T: 1\n\r\n", b"", id="trailer-bare-LF"),
    pytest.param(b"0\r\nX-T: 1\r\n\n", b"", id="trailer-section-ends-in-bare-LF"),
    pytest.param(b"0\r\nX-T: 1\r2\r\n\r\n", b"", id="trailer-bare-CR"),
    pytest.param(b"0\r\nX-T: \x01\r\n\r\n", b"", id="trailer-control-byte"),
    pytest.param(b"0\r\nX-T: a\x00b\r\n\r\n", b"", id="trailer-NUL"),
    pytest.param(b"0\r\nX-T: a\r\n b\r\n\r\n", b"", id="trailer-obs-fold"),
    pytest.param(b"0\r\n X-T: a\r\n\r\n", b"", id="trailer-leading-space"),
    pytest.param(b"0\r\nX-T\r\n\r\n", b"", id="trailer-no-colon"),
    pytest.param(b"0\r\nX-T : a\r\n\r\n", b"", id="trailer-space-before-colon"),
    pytest.param(b"0\r\n: a\r\n\r\n", b"", id="trailer-empty-name"),
    pytest.param(b"0\r\nX@T: a\r\n\r\n", b"", id="trailer-separator-in-name"),
    *(
        pytest.param(b"0\r\n" + name.title() + b": 1\r\n\r\n", b"", id=f"trailer-{name.decode()}")
        for name in sorted(FORBIDDEN_TRAILERS)
    ),
    pytest.param(b"0\r\nCONTENT-LENGTH: 1\r\n\r\n", b"", id="trailer-content-length-uppercase"),
]


@pytest.mark.parametrize(("body", "data"), VALID)
def test_a_valid_body_is_decoded_however_it_arrives(body: bytes, data: bytes) -> None:
    assert assert_same_however_it_arrives(body + GET) == ("ok", data, GET)


@pytest.mark.parametrize(("body", "data"), MALFORMED)
def test_a_malformed_body_is_a_400_however_it_arrives(body: bytes, data: bytes) -> None:
    assert assert_same_however_it_arrives(body) == ("error", 400, data)


@pytest.mark.parametrize(("body", "data"), VALID)
def test_both_parsers_decode_a_valid_body_alike(body: bytes, data: bytes) -> None:
    expected: Transcript = [body_head(body + GET)]
    if data:
        expected.append(("body", data))
    expected += [EOM, ("paused", GET), head(), EOM, DONE]
    assert chunked_request(body + GET) == expected


@pytest.mark.parametrize(("body", "data"), MALFORMED)
def test_both_parsers_refuse_a_malformed_body_alike(body: bytes, data: bytes) -> None:
    expected: Transcript = [body_head(body)]
    if data:
        expected.append(("body", data))
    expected.append(error(400))
    assert chunked_request(body) == expected


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"zz", id="not-hex"),
        pytest.param(b"3x", id="not-hex-after-a-digit"),
        pytest.param(b"0" * 17, id="17-digits"),
        pytest.param(b"3;a\x00", id="NUL-in-extension"),
        pytest.param(b"3;a\rb", id="bare-CR-in-extension"),
        pytest.param(b"3\r\nabc\n", id="bare-LF-after-data"),
        pytest.param(b"3\r\nabc\rx", id="bare-CR-after-data"),
        pytest.param(b"0\r\n\n", id="bare-LF-ends-the-trailers"),
        pytest.param(b"0\r\n ", id="obs-fold-in-trailers"),
        pytest.param(b"0\r\nX T", id="space-in-a-trailer-name"),
        pytest.param(b"0\r\nX: \x01", id="control-byte-in-a-trailer"),
    ],
)
def test_a_byte_that_cannot_stand_where_it_is_is_refused_at_once(prefix: bytes) -> None:
    # No line end yet: the decoder does not wait for one to refuse a bad byte, a bad chunk
    # size or a bad trailer name. (The grammar of extensions is checked at the line's end.)
    assert assert_same_however_it_arrives(prefix)[:2] == ("error", 400)


def test_a_huge_chunk_size_is_taken_and_its_data_streamed() -> None:
    # 2**64 - 1 bytes: the connection's max_request_body_size bounds what is read of it.
    assert decode([b"ffffffffffffffff\r\nabc"]) == ("need", b"abc")
    assert MAX_CHUNK_SIZE_DIGITS == 16


# -- limits: however the bytes arrive ----------------------------------------------------------

LIMIT = 64


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        pytest.param(
            b"1;" + b"a" * 60 + b"\r\nx\r\n0\r\n\r\n", ("ok", b"x", b""), id="line-at-limit"
        ),
        pytest.param(
            b"1;" + b"a" * 61 + b"\r\nx\r\n0\r\n\r\n", ("error", 431, b""), id="line-over"
        ),
        pytest.param(b"1;" + b"a" * 200, ("error", 431, b""), id="line-over-unfinished"),
        pytest.param(
            b"0\r\nX: " + b"v" * 57 + b"\r\n\r\n", ("ok", b"", b""), id="trailers-at-limit"
        ),
        pytest.param(
            b"0\r\nX: " + b"v" * 58 + b"\r\n\r\n", ("error", 431, b""), id="trailers-over"
        ),
        pytest.param(
            b"0\r\n" + b"X: v\r\n" * 10 + b"\r\n", ("ok", b"", b""), id="many-trailers-at-limit"
        ),
        pytest.param(
            b"0\r\n" + b"X: v\r\n" * 11 + b"\r\n", ("error", 431, b""), id="many-trailers-over"
        ),
        pytest.param(
            b"1;" + b"a" * 62 + b"\x00", ("error", 431, b""), id="bad-byte-past-the-limit-is-431"
        ),
        pytest.param(
            b"1;" + b"a" * 61 + b"\x00", ("error", 400, b""), id="bad-byte-within-the-limit-is-400"
        ),
        pytest.param(
            (b"1\r\nx\r\n" + b"1;" + b"a" * 40 + b"\r\ny\r\n") * 5 + b"0\r\n\r\n",
            ("ok", b"xy" * 5, b""),
            id="the-limit-is-per-line",
        ),
    ],
)
def test_a_chunk_line_or_trailer_section_over_the_limit_is_a_431(
    body: bytes, outcome: Outcome
) -> None:
    # A chunk line counts its CRLF; the trailer section its fields and the final CRLF: 64
    # bytes pass, 65 do not. A bad byte within the first 64 is a 400, past them a 431.
    assert assert_same_however_it_arrives(body, LIMIT) == outcome


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"3;a=" + b"b" * 60 * KIB + b"\r\nabc\r\n0\r\n\r\n", id="extension-60KiB"),
        pytest.param(b"3\r\nabc\r\n0\r\nX-T: " + b"v" * 60 * KIB + b"\r\n\r\n", id="trailer-60KiB"),
        pytest.param(b"3\r\nabc\r\n0\r\n" + b"X-T: v\r\n" * 8 * KIB + b"\r\n", id="trailers-64KiB"),
    ],
)
def test_both_parsers_answer_431_for_60KiB_in_one_read_as_in_many(body: bytes) -> None:
    result = chunked_request(body)
    assert result[0] == body_head(body)
    assert result[-1] == error(431)


# -- the request around the body -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n0\r\n\r\n" + GET,
            [
                head(
                    b"POST",
                    headers=[*CHUNKED_HEADERS[:1], (b"connection", b"close"), CHUNKED_HEADERS[1]],
                    keep_alive=False,
                    trailing=b"0\r\n\r\n" + GET,
                ),
                EOM,
                error(400),  # h11: "Got data when expecting EOF"
            ],
            id="bytes-after-a-chunked-request-with-connection-close",
        ),
        pytest.param(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
            [
                head(
                    b"POST",
                    headers=[CHUNKED_HEADERS[1]],
                    version=b"1.0",
                    keep_alive=False,
                    trailing=b"1\r\na\r\n0\r\n\r\n",
                ),
                ("body", b"a"),
                EOM,
                ("end", True, True, b""),
            ],
            id="http-1.0-chunked",
        ),
    ],
)
def test_the_state_after_a_chunked_body_is_h11s(data: bytes, expected: Transcript) -> None:
    assert assert_parsers_agree(data) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"3\r\nab", [("body", b"ab"), error(400)], id="mid-data"),
        pytest.param(b"3\r\nabc\r\n0\r", [("body", b"abc"), error(400)], id="mid-last-chunk"),
        pytest.param(b"0\r\nX-T: 1\r\n", [error(400)], id="mid-trailers"),
        pytest.param(b"0\r\n\r\n", [EOM, CLOSED, AFTER_EOF], id="after-the-body"),
    ],
)
def test_eof_in_a_chunked_body(body: bytes, expected: Transcript) -> None:
    assert assert_parsers_agree(CHUNKED_POST + body, eof=True) == [body_head(body), *expected]


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_a_read_of_one_byte_chunks_is_one_body_event(parser_class: type[RequestParser]) -> None:
    # A flood of tiny chunks costs one event per read, not one per chunk (h11 gave 10,000).
    parser = parser_class(MAX_HEADER_SIZE)
    parser.receive_data(CHUNKED_POST + b"1\r\na\r\n" * 10_000)
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"a" * 10_000
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"1\r\nb\r\n" * 10_000 + b"0\r\n\r\n")
    assert parser.next_event() == b"b" * 10_000
    assert parser.next_event() is END_OF_MESSAGE


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_the_decoder_consumes_nothing_after_the_body(parser_class: type[RequestParser]) -> None:
    parser = parser_class(MAX_HEADER_SIZE)
    parser.receive_data(CHUNKED_POST + b"1\r\na\r\n0\r\n\r\n" + GET[:5])
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"a"
    assert parser.next_event() is END_OF_MESSAGE
    assert parser.trailing_data == GET[:5]
    assert transcript(parser, [GET[5:]]) == [("paused", GET), head(), EOM, DONE]


# -- properties ----------------------------------------------------------------------------

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_ORACLE_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*"
    % (_TOKEN, _TOKEN, _QUOTED)
)
_ORACLE_FIELD_LINE = re.compile(
    rb"(%s):[ \t]*(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?[ \t]*" % _TOKEN
)


def oracle(data: bytes) -> Outcome:
    """A naive decoder of a whole input, from the ABNF (lines far below any limit):
    ``("ok", body, rest)``, ``("error", 400, body)`` or ``("need", body)``."""
    body = b""
    pos = 0

    def line() -> bytes | None:
        nonlocal pos
        newline = data.find(b"\n", pos)
        if newline == -1:
            return None
        text, pos = data[pos:newline], newline + 1
        if not text.endswith(b"\r") or b"\r" in text[:-1]:
            raise ValueError("not CRLF")
        return text[:-1]

    try:
        while True:
            size_line = line()
            if size_line is None:
                return ("need", body)
            match = _ORACLE_SIZE_LINE.fullmatch(size_line)
            if match is None:
                raise ValueError("chunk line")
            size = int(match[1], 16)
            if size == 0:
                break
            body += data[pos : pos + size]
            pos += size
            if pos > len(data):
                return ("need", body)
            after = data[pos : pos + 2]
            if not b"\r\n".startswith(after):
                raise ValueError("chunk end")
            if len(after) < 2:
                return ("need", body)
            pos += 2
        while True:
            field = line()
            if field is None:
                return ("need", body)
            if not field:
                return ("ok", body, data[pos:])
            match = _ORACLE_FIELD_LINE.fullmatch(field)
            if match is None or match[1].lower() in FORBIDDEN_TRAILERS:
                raise ValueError("trailer")
    except ValueError:
        return ("error", 400, body)


def render(chunks: list[tuple[bytes, bytes]], trailers: list[bytes], case: list[bool]) -> bytes:
    out = []
    for (data, extension), upper in zip(chunks, case + [False] * len(chunks), strict=False):
        size = b"%X" % len(data) if upper else b"%x" % len(data)
        out.append(size + extension + b"\r\n" + data + b"\r\n")
    out.append(b"0\r\n")
    out.extend(field + b"\r\n" for field in trailers)
    out.append(b"\r\n")
    return b"".join(out)


TOKENS = st.sampled_from([b"a", b"name", b"x-1", b"!#$%&'*+.^_`|~"])
EXTENSIONS = st.lists(
    st.tuples(
        st.sampled_from([b"", b" ", b"\t "]),
        TOKENS,
        st.one_of(
            st.just(b""),
            st.builds(lambda v: b"=" + v, TOKENS),
            st.sampled_from([b' = "q \\" x"', b'=""', b'="\xff\\\t"']),
        ),
    ).map(lambda part: part[0] + b";" + part[0] + part[1] + part[2]),
    max_size=3,
).map(b"".join)
CHUNKS = st.lists(st.tuples(st.binary(min_size=1, max_size=40), EXTENSIONS), max_size=6)
TRAILERS = st.lists(
    st.sampled_from([b"X-T: 1", b"Y:", b"Z:  a  b ", b"X-U:\t\xc3\xa9", b"ETag: x"]), max_size=3
)
VALID_BODIES = st.builds(render, CHUNKS, TRAILERS, st.lists(st.booleans(), max_size=6))
PIECES = st.sampled_from(
    [b"0", b"3", b"f", b"\r\n", b"\r", b"\n", b";", b"=", b'"', b" ", b"\t", b"a", b"abc",
     b"\x00", b"\\", b":", b"X-T: 1", b"Content-Length: 1", b"0\r\n\r\n", b"\xff"]
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(VALID_BODIES))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(b'\r\n\x00 \t;="\\:0aF\x7f\xff'))
        if action == "insert":
            data[where:where] = bytes([byte])
        elif where < len(data):
            data[where : where + 1] = b"" if action == "delete" else bytes([byte])
    return bytes(data)


BODIES = st.one_of(
    VALID_BODIES,
    mutated(),
    st.lists(PIECES, max_size=12).map(b"".join),
    st.binary(max_size=60),
)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(point, len(data)) for point in cuts})
    bounds = zip([0, *points], [*points, len(data)], strict=True)
    return [data[start:end] for start, end in bounds if end > start]


@settings(max_examples=200, deadline=None)
@given(
    body=VALID_BODIES,
    after=st.sampled_from([b"", GET, b"\r\n"]),
    cuts=st.lists(st.integers(0, 400), max_size=4),
)
def test_a_body_from_the_grammar_is_decoded_exactly(
    body: bytes, after: bytes, cuts: list[int]
) -> None:
    expected = oracle(body + after)
    assert expected[0] == "ok"
    assert expected[2] == after
    assert decode([body + after]) == expected
    assert decode(cut(body + after, cuts)) == expected


@settings(max_examples=300, deadline=None)
@given(body=BODIES, cuts=st.lists(st.integers(0, 400), max_size=4))
def test_any_body_gets_the_oracles_verdict_however_it_arrives(body: bytes, cuts: list[int]) -> None:
    whole = decode([body])
    assert decode(cut(body, cuts)) == whole
    expected = oracle(body)
    if expected[0] == "need":
        # The decoder refuses a line at once when its first bytes are already wrong.
        assert whole == expected or whole == ("error", 400, expected[1])
    else:
        assert whole == expected


@settings(max_examples=300, deadline=None)
@given(body=BODIES, cuts=st.lists(st.integers(0, 400), max_size=4), eof=st.booleans())
def test_any_body_gives_the_same_transcript_with_both_parsers(
    body: bytes, cuts: list[int], eof: bool
) -> None:
    chunks = cut(CHUNKED_POST + body + GET, cuts)
    reference = transcript(H11Parser(MAX_HEADER_SIZE), chunks, eof=eof, join=False)
    assert transcript(HttptoolsParser(MAX_HEADER_SIZE), chunks, eof=eof, join=False) == reference
    whole = transcript(H11Parser(MAX_HEADER_SIZE), [CHUNKED_POST + body + GET], eof=eof)
    joined = transcript(H11Parser(MAX_HEADER_SIZE), chunks, eof=eof)
    assert [entry[:2] for entry in joined if entry[0] in ("body", "error")] == [
        entry[:2] for entry in whole if entry[0] in ("body", "error")
    ]
