"""Tier 1: the two request parsers behind ``RequestParser``, fed the same bytes, agree.

:class:`~trio_asgi._h11.parsing.H11Parser` is the reference; every row here is fed to it and to
:class:`~trio_asgi._h11.httptools.HttptoolsParser` whole, one byte at a time, and split
at every position (or at a sample of them, for long inputs), with and without an EOF after
it. A :func:`transcript` records what a connection sees: each event, ``trailing_data``
after each head (the new protocol's bytes, after an upgrade), ``PAUSED`` where a pipelined
request waits for ``start_next_cycle()``, the ``ParseError`` status, and the state at the
end. The two transcripts must be equal, and equal to what the row expects of h11.

For the same arrival, the two parsers must agree event for event, body pieces included.
Where a body is cut into pieces depends on how the bytes arrived, so the expectations, and
the comparisons between arrivals, join consecutive pieces. A hypothesis test then feeds
both parsers arbitrary sequences of request fragments.

Chunked bodies are decoded by one :class:`~trio_asgi._h11.chunked.ChunkedDecoder` whichever
parser parsed the head; tests/proto/test_chunked.py holds their table and property tests.
That the suite's parametrisation reaches the connection is tests/driver/test_parser_fixture.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._h11.httptools import HAVE_HTTPTOOLS, HttptoolsParser
from trio_asgi._h11.parsing import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    H11Parser,
    ParseError,
    RequestHead,
    RequestParser,
)
from trio_asgi._h11.settings import parser_factory

MAX_HEADER_SIZE = 16 * 1024
PARSERS = (H11Parser, HttptoolsParser)
KIB = 1024

Transcript = list[tuple[Any, ...]]


def transcript(
    parser: RequestParser, chunks: Iterable[bytes], *, eof: bool = False, join: bool = True
) -> Transcript:
    """Feed ``chunks`` (then an EOF) and record everything a connection would see.

    With ``join``, consecutive body pieces are recorded as one.

    Events are pulled until ``NEED_DATA`` or ``CONNECTION_CLOSED``; at ``PAUSED`` after a
    complete request the next cycle starts, as ``HTTP11Connection.response_done`` does;
    ``PAUSED`` after a protocol switch proposal is recorded once as ``switched``. A
    ``ParseError`` ends the transcript; otherwise it ends with the parser's state.
    """
    out: Transcript = []

    def record(item: tuple[Any, ...]) -> None:
        if join and item[0] == "body" and out and out[-1][0] == "body":
            out[-1] = ("body", out[-1][1] + item[1])
        else:
            out.append(item)

    try:
        for chunk in [*chunks, *([b""] if eof else [])]:
            parser.receive_data(chunk)
            while True:
                event = parser.next_event()
                if isinstance(event, RequestHead):
                    record(
                        (
                            "head",
                            event.method,
                            event.target,
                            event.http_version,
                            tuple(event.headers),
                            event.keep_alive,
                            event.expect_continue,
                            parser.trailing_data,
                        )
                    )
                elif isinstance(event, bytes):
                    assert event, "a body event is never empty"
                    record(("body", event))
                elif event is PAUSED and parser.request_complete:
                    record(("paused", parser.trailing_data))
                    parser.start_next_cycle()
                elif event is PAUSED:  # a protocol switch: HTTP is over on this connection
                    if SWITCHED not in out:
                        record(SWITCHED)
                    break
                elif event is END_OF_MESSAGE:
                    record(EOM)
                else:
                    assert event is NEED_DATA or event is CONNECTION_CLOSED
                    if event is CONNECTION_CLOSED:
                        record(CLOSED)
                    break
    except ParseError as exc:
        record(("error", exc.error_status_hint))
        assert parser.failed
        return out
    record(("end", parser.request_complete, parser.in_request, parser.trailing_data))
    return out


def splits(data: bytes) -> list[list[bytes]]:
    """Ways the bytes may arrive: whole, one at a time, and cut in two at many places."""
    if not data:
        return [[]]  # an empty chunk would be an EOF
    if len(data) <= 300:
        cuts: Iterable[int] = range(1, len(data))
    else:
        cuts = range(1, len(data), max(1, len(data) // 12))
    ways = [[data], *([[data[:cut], data[cut:]] for cut in cuts])]
    if len(data) <= 4 * KIB:
        ways.append([bytes([byte]) for byte in data])
    return ways


def assert_parsers_agree(
    data: bytes, expected: Transcript | None = None, **options: Any
) -> Transcript:
    """However ``data`` arrives, both parsers give the same transcript, piece for piece, and
    the same events as when it arrives whole (what is buffered when, and so
    ``trailing_data`` and ``PAUSED``, depends on the arrival). The transcript of ``data``
    arriving whole, body pieces joined, is returned after checking it against ``expected``."""
    reference = transcript(H11Parser(MAX_HEADER_SIZE), splits(data)[0], **options)
    if expected is not None:
        assert reference == expected
    for chunks in splits(data):
        h11_pieces = transcript(H11Parser(MAX_HEADER_SIZE), chunks, join=False, **options)
        httptools_pieces = transcript(
            HttptoolsParser(MAX_HEADER_SIZE), chunks, join=False, **options
        )
        assert httptools_pieces == h11_pieces, [len(chunk) for chunk in chunks]
        h11_transcript = transcript(H11Parser(MAX_HEADER_SIZE), chunks, **options)
        assert events(h11_transcript) == events(reference), [len(chunk) for chunk in chunks]
    return reference


def events(entries: Transcript) -> Transcript:
    """A transcript without what depends on how the bytes arrived."""
    return [
        entry[:-1] if entry[0] == "head" else entry for entry in entries if entry[0] != "paused"
    ]


def head(
    method: bytes = b"GET",
    target: bytes = b"/",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"t"),),
    *,
    version: bytes = b"1.1",
    keep_alive: bool = True,
    expect_continue: bool = False,
    trailing: bytes = b"",
) -> tuple[Any, ...]:
    """The transcript entry of a request head."""
    return ("head", method, target, version, tuple(headers), keep_alive, expect_continue, trailing)


EOM = ("END_OF_MESSAGE",)
CLOSED = ("CONNECTION_CLOSED",)
SWITCHED = ("switched",)
DONE = ("end", True, True, b"")  # a request is complete: the next cycle may start
AFTER_EOF = ("end", False, True, b"")  # h11's CLOSED: not idle, and never again


def after_switch(trailing: bytes) -> tuple[Any, ...]:
    """The end state after a protocol switch proposal: ``trailing`` is the new protocol's."""
    return ("end", False, True, trailing)


def error(status: int) -> tuple[Any, ...]:
    return ("error", status)


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKED_HEADERS = ((b"host", b"t"), (b"transfer-encoding", b"chunked"))
WS_HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
WS_HEADERS = (
    (b"host", b"t"),
    (b"connection", b"Upgrade"),
    (b"upgrade", b"websocket"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
)
MASKED_TEXT_FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # "Hello", RFC 6455 5.7

# -- the rows: request bytes and what h11 makes of them ------------------------------------

ROWS = [
    pytest.param(GET, [head(), EOM, DONE], id="simple-get"),
    pytest.param(
        b"GET /a%20b?x=1 HTTP/1.1\r\nHost: t\r\nX-Pad:   v  \t\r\nAccept: */*\r\n\r\n",
        [
            head(
                target=b"/a%20b?x=1",
                headers=[(b"host", b"t"), (b"x-pad", b"v"), (b"accept", b"*/*")],
            ),
            EOM,
            DONE,
        ],
        id="whitespace-around-values-is-stripped",
    ),
    pytest.param(
        GET + b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n" + b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n",
        [
            head(trailing=b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            EOM,
            ("paused", b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            head(target=b"/2", trailing=b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            EOM,
            ("paused", b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            head(target=b"/3"),
            EOM,
            DONE,
        ],
        id="three-pipelined-requests",
    ),
    pytest.param(
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world" + GET,
        [
            head(
                b"POST",
                b"/p",
                [(b"host", b"t"), (b"content-length", b"11")],
                trailing=b"hello world" + GET,
            ),
            ("body", b"hello world"),
            EOM,
            ("paused", GET),
            head(),
            EOM,
            DONE,
        ],
        id="content-length-body-then-a-pipelined-get",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value\r\nhello\r\n6;a="b c";d\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n' + GET,
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b'5;name=value\r\nhello\r\n6;a="b c";d\r\n world\r\n0\r\n'
                b"X-Trailer: yes\r\n\r\n" + GET,
            ),
            ("body", b"hello world"),
            EOM,
            ("paused", GET),
            head(),
            EOM,
            DONE,
        ],
        id="chunked-with-extensions-and-trailers",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"b\r\nx\r\n\r\n\r\ny\r\nz\r\n0\r\n\r\n\r\n",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b"b\r\nx\r\n\r\n\r\ny\r\nz\r\n0\r\n\r\n\r\n",
            ),
            ("body", b"x\r\n\r\n\r\ny\r\nz"),
            EOM,
            ("paused", b"\r\n"),
            error(400),  # h11: "no request line received"
        ],
        id="chunk-data-holding-blank-lines-then-an-extra-crlf",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b"0\r\n\r\n",
            ),
            EOM,
            DONE,
        ],
        id="transfer-coding-name-is-lowercased",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"expect", b"100-continue"), (b"content-length", b"2")],
                expect_continue=True,
                trailing=b"ok",
            ),
            ("body", b"ok"),
            EOM,
            DONE,
        ],
        id="expect-100-continue",
    ),
    pytest.param(
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        [
            head(
                b"POST",
                headers=[(b"expect", b"100-continue"), (b"content-length", b"2")],
                version=b"1.0",
                keep_alive=False,
                trailing=b"ok",
            ),
            ("body", b"ok"),
            EOM,
            DONE,
        ],
        id="expect-100-continue-ignored-for-http-1.0",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\n\r\n",
        [head(headers=[], version=b"1.0", keep_alive=False), EOM, DONE],
        id="http-1.0-without-host",
    ),
    pytest.param(
        b"POST / HTTP/1.0\r\nHost: t\r\n\r\n",
        [head(b"POST", version=b"1.0", keep_alive=False), EOM, DONE],
        id="http-1.0-body-without-content-length-is-empty",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET,
        [
            head(
                headers=[(b"connection", b"keep-alive")],
                version=b"1.0",
                keep_alive=False,
                trailing=GET,
            ),
            EOM,
            error(400),
        ],
        id="bytes-after-an-http-1.0-request",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Close\r\n\r\n" + GET,
        [
            head(
                headers=[(b"host", b"t"), (b"connection", b"keep-alive, Close")],
                keep_alive=False,
                trailing=GET,
            ),
            EOM,
            error(400),
        ],
        id="bytes-after-connection-close",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: closed\r\n\r\n" + GET,
        [
            head(
                headers=[(b"host", b"t"), (b"connection", b"closed")],
                keep_alive=False,
                trailing=GET,
            ),
            EOM,
            ("paused", GET),
            head(),
            EOM,
            DONE,
        ],
        id="connection-closed-is-not-the-close-token",
    ),
    pytest.param(
        WS_HANDSHAKE + MASKED_TEXT_FRAME,
        [
            head(target=b"/chat", headers=WS_HEADERS, trailing=MASKED_TEXT_FRAME),
            EOM,
            SWITCHED,
            after_switch(MASKED_TEXT_FRAME),
        ],
        id="upgrade-then-websocket-bytes-in-the-same-chunk",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 3\r\n\r\nabcPRI",
        [
            head(
                b"POST",
                headers=[
                    (b"host", b"t"),
                    (b"connection", b"upgrade"),
                    (b"upgrade", b"h2c"),
                    (b"content-length", b"3"),
                ],
                trailing=b"abcPRI",
            ),
            ("body", b"abc"),
            EOM,
            SWITCHED,
            after_switch(b"PRI"),
        ],
        id="upgrade-request-with-a-body",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPRI",
        [
            head(
                b"POST",
                headers=[
                    (b"host", b"t"),
                    (b"connection", b"upgrade"),
                    (b"upgrade", b"h2c"),
                    (b"transfer-encoding", b"chunked"),
                ],
                trailing=b"3\r\nabc\r\n0\r\n\r\nPRI",
            ),
            ("body", b"abc"),
            EOM,
            SWITCHED,
            after_switch(b"PRI"),
        ],
        id="upgrade-request-with-a-chunked-body",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n" + GET,
        [
            head(headers=[(b"host", b"t"), (b"upgrade", b"websocket")], trailing=GET),
            EOM,
            SWITCHED,
            after_switch(GET),
        ],
        id="upgrade-header-without-connection-upgrade-still-proposes-a-switch",
    ),
    pytest.param(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
        [
            head(
                b"CONNECT",
                b"example.com:443",
                [(b"host", b"example.com:443")],
                trailing=b"\x16\x03\x01",
            ),
            EOM,
            SWITCHED,
            after_switch(b"\x16\x03\x01"),
        ],
        id="connect",
    ),
    # -- versions --------------------------------------------------------------------------
    pytest.param(
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        [head(version=b"2.0", keep_alive=False), EOM, DONE],
        id="http-2.0-is-parsed-and-the-connection-answers-505",
    ),
    pytest.param(
        b"GET / HTTP/3.0\r\nHost: t\r\n\r\n",
        [head(version=b"3.0", keep_alive=False), EOM, DONE],
        id="http-3.0-is-parsed-and-the-connection-answers-505",
    ),
    pytest.param(
        b"GET / HTTP/1.2\r\nHost: t\r\n\r\n",
        [head(version=b"1.2", keep_alive=False), EOM, DONE],
        id="http-1.2-is-parsed-and-served-as-1.1",
    ),
    pytest.param(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        [
            head(b"PRI", b"*", [], version=b"2.0", keep_alive=False, trailing=b"SM\r\n\r\n"),
            EOM,
            ("paused", b"SM\r\n\r\n"),
            error(400),
        ],
        id="h2-preface",
    ),
    # -- what h11 accepts and llhttp does not --------------------------------------------------
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
        [
            head(b"POST", headers=[(b"host", b"t"), (b"content-length", b"3")], trailing=b"abc"),
            ("body", b"abc"),
            EOM,
            DONE,
        ],
        id="repeated-equal-content-length",
    ),
    pytest.param(
        b"PURGE /x HTTP/1.1\r\nHost: t\r\n\r\nBREW /pot HTTP/1.1\r\nHost: t\r\n\r\n",
        [
            head(b"PURGE", b"/x", trailing=b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n"),
            EOM,
            ("paused", b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n"),
            head(b"BREW", b"/pot"),
            EOM,
            DONE,
        ],
        id="a-method-llhttp-does-not-know",
    ),
    pytest.param(
        b"GET / HTTP/1.1\nHost: t\n\n" + GET,
        [head(trailing=GET), EOM, ("paused", GET), head(), EOM, DONE],
        id="bare-lf-line-ends",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
        [head(headers=[(b"host", b"t"), (b"x-folded", b"a b")]), EOM, DONE],
        id="obs-fold-is-unfolded-and-the-connection-answers-400",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Ctl: a\x01b\r\n\r\n",
        [head(headers=[(b"host", b"t"), (b"x-ctl", b"a\x01b")]), EOM, DONE],
        id="control-character-in-a-value-is-the-connections-400",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + b"0" * 20 + b"3\r\n\r\nabc",
        [error(400)],
        id="content-length-of-21-digits",
    ),
    # -- malformed -----------------------------------------------------------------------------
    pytest.param(b"GARBAGE\r\n\r\n", [error(400)], id="garbage"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00", [error(400)], id="tls-client-hello"),
    pytest.param(b"\r\n" + GET, [error(400)], id="leading-empty-line"),
    pytest.param(
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", [error(400)], id="double-space-after-method"
    ),
    pytest.param(
        b"GET /  HTTP/1.1\r\nHost: t\r\n\r\n", [error(400)], id="double-space-after-target"
    ),
    pytest.param(b"GET /\r\nHost: t\r\n\r\n", [error(400)], id="http-0.9-request-line"),
    pytest.param(b"GET / HTTP/11.1\r\nHost: t\r\n\r\n", [error(400)], id="two-digit-major-version"),
    pytest.param(
        b"get / HTTP/1.1\r\nHost: t\r\n\r\n", [head(b"get"), EOM, DONE], id="lowercase-method"
    ),
    pytest.param(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", [error(400)], id="space-in-target"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", [error(400)], id="no-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n", [error(400)], id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", [error(400)], id="space-before-colon"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A\r\n\r\n", [error(400)], id="header-without-colon"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", [error(400)], id="bare-cr-in-value"
    ),
    pytest.param(b"GET / HTTP/1.1\r\n Host: t\r\n\r\n", [error(400)], id="continuation-line-first"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n0\r\n\r\n",
        [
            head(
                b"POST",
                headers=[
                    (b"host", b"t"),
                    (b"content-length", b"3"),
                    (b"transfer-encoding", b"chunked"),
                ],
                trailing=b"0\r\n\r\n",
            ),
            EOM,
            DONE,
        ],
        id="content-length-and-transfer-encoding-is-the-connections-400",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        [error(400)],
        id="conflicting-content-lengths",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\na",
        [error(400)],
        id="content-length-plus",
    ),
    # RFC 9112 section 6.3: a final coding other than chunked leaves the body length
    # unknown: 400. Section 6.1: an unknown coding before a final chunked is a 501.
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        [error(400)],
        id="transfer-encoding-gzip",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        [error(400)],
        id="transfer-encoding-chunked-identity",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n",
        [error(400)],
        id="transfer-encoding-xchunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
        [error(400)],
        id="transfer-encoding-chunked-then-gzip",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [error(501)],
        id="transfer-encoding-gzip-then-chunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n",
        [error(400)],
        id="transfer-encoding-folded",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        [error(501)],
        id="transfer-encoding-gzip-chunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        [error(400)],
        id="transfer-encoding-twice",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b"zz\r\nab\r\n0\r\n\r\n",
            ),
            error(400),
        ],
        id="chunk-size-not-hex",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b"3\r\nabcX\r\n0\r\n\r\n",
            ),
            ("body", b"abc"),
            error(400),
        ],
        id="chunk-without-its-crlf",
    ),
    pytest.param(
        GET + b"GARBAGE\r\n\r\n",
        [head(trailing=b"GARBAGE\r\n\r\n"), EOM, ("paused", b"GARBAGE\r\n\r\n"), error(400)],
        id="malformed-pipelined-request-waits-its-turn",
    ),
    # -- sizes ---------------------------------------------------------------------------------
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17 * KIB,
        [error(431)],
        id="unfinished-head-over-16KiB",
    ),
    pytest.param(
        b"GET /" + b"a" * 17 * KIB,
        [error(431)],
        id="unfinished-request-line-over-16KiB",
    ),
]


#: Bytes followed by the client's EOF: between requests it is CONNECTION_CLOSED; inside one,
#: a 400 ("peer unexpectedly closed connection"), after the body bytes that did arrive.
EOF_ROWS = [
    pytest.param(b"", [CLOSED, AFTER_EOF], id="eof-before-any-request"),
    pytest.param(GET, [head(), EOM, CLOSED, AFTER_EOF], id="eof-after-a-request"),
    pytest.param(b"GET / HTTP/1.1\r\nHost:", [error(400)], id="eof-mid-head"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab",
        [
            head(b"POST", headers=[(b"host", b"t"), (b"content-length", b"5")], trailing=b"ab"),
            ("body", b"ab"),
            error(400),
        ],
        id="eof-mid-content-length-body",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        [
            head(
                b"POST",
                headers=[(b"host", b"t"), (b"transfer-encoding", b"chunked")],
                trailing=b"3\r\nab",
            ),
            ("body", b"ab"),
            error(400),
        ],
        id="eof-mid-chunked-body",
    ),
    pytest.param(
        GET + b"GET /2 HTTP/1.1\r\n",
        [
            head(trailing=b"GET /2 HTTP/1.1\r\n"),
            EOM,
            ("paused", b"GET /2 HTTP/1.1\r\n"),
            error(400),
        ],
        id="eof-mid-pipelined-head",
    ),
]


@pytest.mark.parametrize(("data", "expected"), ROWS)
def test_parsers_agree(data: bytes, expected: Transcript) -> None:
    assert_parsers_agree(data, expected)


@pytest.mark.parametrize(("data", "expected"), ROWS)
def test_parsers_agree_with_an_eof_after_the_bytes(data: bytes, expected: Transcript) -> None:
    # The expectation changes with the EOF; that both parsers see the same is what counts,
    # and that neither waits for more: the EOF ends the connection or a switched protocol.
    result = assert_parsers_agree(data, eof=True)
    assert result[-1][0] == "error" or CLOSED in result or SWITCHED in result


@pytest.mark.parametrize(("data", "expected"), EOF_ROWS)
def test_parsers_agree_on_an_eof(data: bytes, expected: Transcript) -> None:
    assert_parsers_agree(data, expected, eof=True)


def test_a_complete_head_over_the_limit_is_given_for_the_connection_to_measure() -> None:
    # h11 limits only a head still arriving; a whole one is measured by HTTP11Connection
    # (trailing_data before and after the head), so both parsers give it, byte-exact.
    data = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17 * KIB + b"\r\n\r\n" + GET
    [first, *_] = assert_parsers_agree(data)
    assert first[0] == "head"
    assert first[-1] == GET
    for parser_class in PARSERS:
        parser = parser_class(MAX_HEADER_SIZE)
        parser.receive_data(data)
        before = parser.trailing_data
        assert isinstance(parser.next_event(), RequestHead)
        assert len(before) - len(parser.trailing_data) == len(data) - len(GET)


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_431_while_the_head_is_still_arriving(parser_class: type[RequestParser]) -> None:
    parser = parser_class(2 * KIB)
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: t\r\n")
    for index in range(3):
        assert parser.next_event() is NEED_DATA
        parser.receive_data(b"X-H%d: %s\r\n" % (index, b"v" * 500))
    assert parser.next_event() is NEED_DATA  # 1.6 KiB so far
    parser.receive_data(b"X-Last: " + b"v" * 500)
    with pytest.raises(ParseError) as info:
        parser.next_event()
    assert info.value.error_status_hint == 431
    assert parser.failed


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(
            [b"3\r\nabc\r\n0\r\n", *[b"X-T%d: %s\r\n" % (i, b"v" * 999) for i in range(20)]],
            id="trailer-fields",
        ),
        pytest.param([b"3\r\nabc\r\n0\r\nX-T: ", *[b"v" * 1000] * 20], id="one-trailer-field"),
        pytest.param([b"3;", *[b"x" * 1000] * 20], id="chunk-extension"),
    ],
)
@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_431_for_a_chunk_line_or_trailer_section_still_arriving(
    parser_class: type[RequestParser], pieces: list[bytes]
) -> None:
    # h11 buffers a chunk-size line and a trailer section whole; past max_header_size
    # while incomplete, 431. llhttp streams them, so the httptools parser counts.
    parser = parser_class(MAX_HEADER_SIZE)
    result = transcript(parser, [CHUNKED_POST, *pieces])
    assert result[0] == head(b"POST", headers=CHUNKED_HEADERS)
    assert result[-1] == error(431)
    assert sum(map(len, pieces)) > MAX_HEADER_SIZE


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_many_small_chunks_in_one_read_are_no_431(parser_class: type[RequestParser]) -> None:
    # 2 KiB of chunk-size lines and CRLFs against a 1 KiB limit: each line is complete, so
    # none is an incomplete event over the limit, whatever their sum.
    body = b"1\r\na\r\n" * 400 + b"0\r\n\r\n"
    result = transcript(parser_class(KIB), [CHUNKED_POST + body])
    assert events(result) == [
        head(b"POST", headers=CHUNKED_HEADERS)[:-1],
        ("body", b"a" * 400),
        EOM,
        DONE,
    ]


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_a_pipelined_request_is_not_parsed_before_its_cycle(
    parser_class: type[RequestParser],
) -> None:
    parser = parser_class(MAX_HEADER_SIZE)
    parser.receive_data(GET + b"NOT HTTP\r\n\r\n")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END_OF_MESSAGE
    for _ in range(3):  # the broken request waits: the first one's response goes out first
        assert parser.next_event() is PAUSED
        assert parser.request_complete
        assert not parser.failed
    assert parser.trailing_data == b"NOT HTTP\r\n\r\n"
    parser.start_next_cycle()
    assert parser.in_request
    with pytest.raises(ParseError) as info:
        parser.next_event()
    assert info.value.error_status_hint == 400
    assert parser.failed


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_state_through_one_request_cycle(parser_class: type[RequestParser]) -> None:
    parser = parser_class(MAX_HEADER_SIZE)
    assert (parser.in_request, parser.request_complete, parser.failed) == (False, False, False)
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab")
    assert parser.in_request
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"ab"
    assert parser.next_event() is NEED_DATA
    assert (parser.in_request, parser.request_complete) == (True, False)
    parser.receive_data(b"cd")
    assert parser.next_event() == b"cd"
    assert parser.next_event() is END_OF_MESSAGE
    assert parser.request_complete
    assert parser.next_event() is NEED_DATA
    parser.start_next_cycle()
    assert (parser.in_request, parser.request_complete, parser.trailing_data) == (False, False, b"")
    parser.receive_data(b"")
    assert parser.next_event() is CONNECTION_CLOSED
    assert parser.next_event() is CONNECTION_CLOSED


@pytest.mark.parametrize("parser_class", PARSERS, ids=["h11", "httptools"])
def test_bytes_after_eof_are_a_bug_of_the_caller(parser_class: type[RequestParser]) -> None:
    parser = parser_class(MAX_HEADER_SIZE)
    parser.receive_data(b"")
    with pytest.raises(RuntimeError):
        parser.receive_data(b"GET")


def test_parser_factory_chooses_httptools_when_installed() -> None:
    assert HAVE_HTTPTOOLS
    assert isinstance(parser_factory("auto")(100), HttptoolsParser)
    assert isinstance(parser_factory("httptools")(100), HttptoolsParser)
    assert isinstance(parser_factory("h11")(100), H11Parser)


# -- arbitrary fragments -------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\n",
        b"POST /p?q HTTP/1.1\r\n",
        b"GET / HTTP/1.0\r\n",
        b"HEAD /x HTTP/1.1\r\n",
        b"GET /  HTTP/1.1\r\n",
        b"GET / HTTP/2.0\r\n",
        b"CONNECT h:1 HTTP/1.1\r\n",
        b"Host: t\r\n",
        b"Host:t\r\n",
        b"Content-Length: 3\r\n",
        b"Content-Length: 3, 3\r\n",
        b"Content-Length: x\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Connection: close\r\n",
        b"Connection: upgrade\r\n",
        b"Upgrade: websocket\r\n",
        b"Expect: 100-continue\r\n",
        b"X-A: a\r\n b\r\n",
        b"X-B: \x01\r\n",
        b"3\r\nabc\r\n",
        b"3;e=1\r\nabc\r\n",
        b"0\r\n\r\n",
        b"0\r\nT: 1\r\n\r\n",
        b"xyz",
        b"\r\n",
        b"\n",
        b" ",
        b"\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    fragments=st.lists(FRAGMENTS, max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
    eof=st.booleans(),
)
def test_any_fragments_give_the_same_transcript(
    fragments: list[bytes], cuts: list[int], eof: bool
) -> None:
    data = b"".join(fragments)
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = zip([0, *points], [*points, len(data)], strict=True)
    chunks = [data[start:end] for start, end in bounds if end > start]
    reference = transcript(H11Parser(MAX_HEADER_SIZE), chunks, eof=eof, join=False)
    assert transcript(HttptoolsParser(MAX_HEADER_SIZE), chunks, eof=eof, join=False) == reference
