"""Tier 2: a table of malformed and hostile HTTP/1.1 requests, each answered and closed.

Every row is raw request bytes sent over memory streams to one
:class:`~trio_asgi._h11.connection.HTTP11Connection`, the status the server must answer with, and
whether the app may be called (a chunked body breaks only after the app has started). For
every row the response carries ``Connection: close``, nothing follows it, the server closes
the connection (EOF), and nothing is logged at ERROR: a hostile client is not a server error.

Where the RFCs leave a choice, the row's id says which the server makes (e.g. 431, not 414,
for an over-long request line). Sources: RFC 9112 (message syntax), RFC 9110 (semantics),
RFC 6585 (431), and the request-smuggling literature (CL.TE / TE.CL, obs-fold, whitespace
before the colon, Transfer-Encoding obfuscation, chunk-size and chunk-extension tricks, the
``\\x85`` WebSocket-upgrade trick).

Apart from the table: a head over ``max_header_size`` arriving in pieces, a TLS ClientHello
on the plain port (closed without a byte of response), and the near-misses the server must
*accept* (UTF-8 in a header value, extra whitespace before ``chunked``, a repeated equal
``Content-Length``).
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import pytest
import trio
import trio.testing

from ..helpers import hello_app, read_until_eof
from ..http11_tools import (
    deadlock_guard,
    error_records,
    finish,
    parse_responses,
    raw_request,
    read_body,
    respond,
    start_connection,
)

HOST = (b"Host", b"t")
CHUNKED = (b"Transfer-Encoding", b"chunked")
#: The head of a chunked POST; each chunked row appends its broken body.
CHUNKED_POST = raw_request(b"POST", b"/", [HOST, CHUNKED])
#: The headers of a valid WebSocket handshake, less its Upgrade header.
WS_HANDSHAKE = [
    HOST,
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"Sec-WebSocket-Version", b"13"),
]
KIB = 1024


def get(*headers: tuple[bytes, bytes]) -> bytes:
    """A GET with a Host header and ``headers``, exactly as written."""
    return raw_request(headers=[HOST, *headers])


def post(*headers: tuple[bytes, bytes], body: bytes = b"") -> bytes:
    """A POST with a Host header, ``headers`` and ``body``, exactly as written."""
    return raw_request(b"POST", b"/", [HOST, *headers], body)


def case(
    case_id: str, request: bytes, status: int, *, reaches_app: bool = False, **config: Any
) -> Any:
    """One row: ``request`` gets ``status`` and a close; ``config`` goes to ``Config``."""
    return pytest.param(request, status, reaches_app, config, id=case_id)


MALFORMED = [
    # -- the request line (RFC 9112 section 3) ---------------------------------------------
    case("garbage-line", b"GARBAGE\r\n\r\n", 400),
    case("binary-garbage", b"\x00\x01\x02\xfe\xff\r\n\r\n", 400),
    case("smtp-command", b"HELO mail.example.com\r\n\r\n", 400),
    case("request-line-double-space", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("request-line-leading-space", b" GET / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("request-line-tab-separator", b"GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("request-line-trailing-junk", b"GET / HTTP/1.1 x\r\nHost: t\r\n\r\n", 400),
    case("request-line-without-target", b"GET HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("target-with-space", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("target-with-NUL", b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("target-with-DEL", b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("method-with-separator", b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    case("version-lowercase", b"GET / http/1.1\r\nHost: t\r\n\r\n", 400),
    case("version-without-minor", b"GET / HTTP/1\r\nHost: t\r\n\r\n", 400),
    case("version-two-digit-major", b"GET / HTTP/11.1\r\nHost: t\r\n\r\n", 400),
    case("http-0.9-request-line-gets-400", b"GET /\r\n\r\n", 400),
    case("http-2.0-version-gets-505", raw_request(http_version=b"2.0"), 505),
    case("http-3.0-version-gets-505", raw_request(http_version=b"3.0"), 505),
    case("h2-prior-knowledge-preface-gets-505", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    case("fragment-in-target", raw_request(target=b"/a#frag"), 400),
    case("fragment-in-absolute-target", raw_request(target=b"http://t/a#frag"), 400),
    # -- Host (RFC 9112 section 3.2) -------------------------------------------------------
    case("http-1.1-without-host", raw_request(headers=[]), 400),
    case("two-host-headers", get((b"Host", b"u")), 400),
    case("two-equal-host-headers", get(HOST), 400),
    # -- Content-Length and Transfer-Encoding (RFC 9112 section 6) --------------------------
    case("content-length-then-chunked", post((b"Content-Length", b"3"), CHUNKED), 400),
    case("chunked-then-content-length", post(CHUNKED, (b"Content-Length", b"3")), 400),
    case("content-length-negative", post((b"Content-Length", b"-1")), 400),
    case("content-length-non-numeric", post((b"Content-Length", b"abc"), body=b"abc"), 400),
    case("content-length-differing-list", post((b"Content-Length", b"1, 2"), body=b"ab"), 400),
    case("content-length-leading-plus", post((b"Content-Length", b"+1"), body=b"a"), 400),
    case("content-length-hex", post((b"Content-Length", b"0x10")), 400),
    case("content-length-exponent", post((b"Content-Length", b"1e3")), 400),
    case("content-length-inner-space", post((b"Content-Length", b"1 0")), 400),
    case("content-length-empty", post((b"Content-Length", b"")), 400),
    case(
        "content-length-differing-duplicates",
        post((b"Content-Length", b"1"), (b"Content-Length", b"2"), body=b"ab"),
        400,
    ),
    # RFC 9112 section 6.3: a final coding other than chunked leaves the body length
    # unknown (400); section 6.1: an unknown coding before a final chunked is a 501.
    case("transfer-encoding-gzip-gets-400", post((b"Transfer-Encoding", b"gzip")), 400),
    case(
        "transfer-encoding-chunked-identity-gets-400",
        post((b"Transfer-Encoding", b"chunked, identity")),
        400,
    ),
    case(
        "transfer-encoding-gzip-chunked-gets-501",
        post((b"Transfer-Encoding", b"gzip, chunked")),
        501,
    ),
    case("transfer-encoding-xchunked-gets-400", post((b"Transfer-Encoding", b"xchunked")), 400),
    case(
        "transfer-encoding-chunked-twice-gets-400",
        post(CHUNKED, CHUNKED, body=b"0\r\n\r\n"),
        400,
    ),
    case(
        "transfer-encoding-chunked-then-unknown-header-gets-400",
        post(CHUNKED, (b"Transfer-Encoding", b"foo"), body=b"0\r\n\r\n"),
        400,
    ),
    case(
        "transfer-encoding-vertical-tab-chunked",
        post((b"Transfer-Encoding", b"\x0bchunked"), body=b"0\r\n\r\n"),
        400,
    ),
    case(
        "transfer-encoding-chunked-form-feed",
        post((b"Transfer-Encoding", b"chunked\x0c"), body=b"0\r\n\r\n"),
        400,
    ),
    case(
        "transfer-encoding-obs-folded-chunked",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    # -- bad chunked bodies (RFC 9112 section 7.1): the app has begun reading --------------
    case("chunk-size-non-hex", CHUNKED_POST + b"zz\r\nab\r\n0\r\n\r\n", 400, reaches_app=True),
    case("chunk-size-negative", CHUNKED_POST + b"-3\r\nabc\r\n0\r\n\r\n", 400, reaches_app=True),
    case(
        "chunk-size-overflow-21-hex-digits",
        CHUNKED_POST + b"1" + b"0" * 20 + b"\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case("chunk-size-0x-prefix", CHUNKED_POST + b"0x3\r\nabc\r\n0\r\n\r\n", 400, reaches_app=True),
    case(
        "chunk-size-leading-space", CHUNKED_POST + b" 3\r\nabc\r\n0\r\n\r\n", 400, reaches_app=True
    ),
    case(
        "chunk-data-without-CRLF",
        CHUNKED_POST + b"3\r\nabcXY0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-line-ends-in-bare-LF",
        CHUNKED_POST + b"3\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-extension-with-bare-LF",
        CHUNKED_POST + b"3;x\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-non-hex-refused-before-its-line-ends",
        CHUNKED_POST + b"zz",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-17-hex-digits",
        CHUNKED_POST + b"1" + b"0" * 16 + b"\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-17-hex-digits-with-leading-zeros",
        CHUNKED_POST + b"0" * 16 + b"3\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-space-before-CRLF",
        CHUNKED_POST + b"3 \r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-size-tab-before-CRLF",
        CHUNKED_POST + b"3\t\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case("chunk-extension-empty", CHUNKED_POST + b"3;\r\nabc\r\n0\r\n\r\n", 400, reaches_app=True),
    case(
        "chunk-extension-with-space-in-name",
        CHUNKED_POST + b"3;a b\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-extension-with-bare-CR",
        CHUNKED_POST + b"3;a\rb\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-extension-with-NUL",
        CHUNKED_POST + b"3;a\x00\r\nabc\r\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "chunk-extension-unterminated-quoted-string",
        CHUNKED_POST + b'3;a="b\r\nabc\r\n0\r\n\r\n',
        400,
        reaches_app=True,
    ),
    case(
        "chunk-extension-over-16KiB-in-one-write-gets-431",
        CHUNKED_POST + b"3;a=" + b"b" * 60 * KIB + b"\r\nabc\r\n0\r\n\r\n",
        431,
        reaches_app=True,
    ),
    case(
        "chunk-data-then-bare-LF",
        CHUNKED_POST + b"3\r\nabc\n0\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "last-chunk-then-bare-LF-does-not-end-the-body",
        CHUNKED_POST + b"0\r\n\n" + raw_request(),
        400,
        reaches_app=True,
    ),
    case(
        "trailer-line-ends-in-bare-LF",
        CHUNKED_POST + b"0\r\nX-T: 1\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-with-bare-CR",
        CHUNKED_POST + b"0\r\nX-T: 1\r2\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-with-control-byte",
        CHUNKED_POST + b"0\r\nX-T: \x01\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-obs-fold",
        CHUNKED_POST + b"0\r\nX-T: a\r\n b\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-without-colon",
        CHUNKED_POST + b"0\r\nX-T\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-content-length",
        CHUNKED_POST + b"3\r\nabc\r\n0\r\nContent-Length: 3\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-transfer-encoding",
        CHUNKED_POST + b"3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-host",
        CHUNKED_POST + b"3\r\nabc\r\n0\r\nHost: u\r\n\r\n",
        400,
        reaches_app=True,
    ),
    case(
        "trailer-section-over-16KiB-in-one-write-gets-431",
        CHUNKED_POST + b"0\r\n" + b"X-T: " + b"v" * 60 * KIB + b"\r\n\r\n",
        431,
        reaches_app=True,
    ),
    # -- header lines (RFC 9112 section 5) --------------------------------------------------
    case("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
    case("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n", 400),
    case("space-before-colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    case(
        "space-before-colon-content-length",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n\r\nabc",
        400,
    ),
    case(
        "tab-before-colon-transfer-encoding",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    case("header-line-without-colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-A\r\n\r\n", 400),
    case("header-empty-name", b"GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", 400),
    case("header-name-with-SOH", get((b"X-\x01A", b"v")), 400),
    case("header-name-with-DEL", get((b"X-\x7fA", b"v")), 400),
    case("header-name-with-utf8", get((b"X-\xc3\x85", b"v")), 400),
    case("header-value-with-NUL", get((b"X-A", b"a\x00b")), 400),
    case("header-value-with-SOH", get((b"X-A", b"a\x01b")), 400),
    case("header-value-with-VT-0x0b", get((b"X-A", b"a\x0bb")), 400),
    case("header-value-with-FF-0x0c", get((b"X-A", b"a\x0cb")), 400),
    case("header-value-with-bare-CR", get((b"X-A", b"a\rb")), 400),
    case("header-value-with-FS-0x1c", get((b"X-A", b"a\x1cb")), 400),
    case("header-value-with-GS-0x1d", get((b"X-A", b"a\x1db")), 400),
    case("header-value-with-RS-0x1e", get((b"X-A", b"a\x1eb")), 400),
    case("header-value-with-DEL-0x7f", get((b"X-A", b"a\x7fb")), 400),
    case(
        "upgrade-websocket-raw-0x85-after",
        raw_request(headers=[*WS_HANDSHAKE, (b"Upgrade", b"websocket\x85")]),
        400,
    ),
    case(
        "upgrade-websocket-raw-0x85-before",
        raw_request(headers=[*WS_HANDSHAKE, (b"Upgrade", b"\x85websocket")]),
        400,
    ),
    # -- sizes (RFC 6585 section 5, RFC 9110 section 15.5.14) -------------------------------
    case("head-over-16KiB-in-one-write", get((b"X-Big", b"a" * 17 * KIB)), 431),
    case(
        "head-over-16KiB-unfinished", b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17 * KIB, 431
    ),
    case(
        # h11 strips the whitespace around a value before we see the head: the limit is on
        # the bytes that arrived, not on what is left after parsing.
        "head-over-16KiB-of-whitespace-in-one-write",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad:" + b" " * 17 * KIB + b"v\r\n\r\n",
        431,
    ),
    case(
        "head-over-max-header-size-2KiB-in-one-write",
        get(*[(b"X-H%d" % i, b"v" * 100) for i in range(30)]),
        431,
        max_header_size=2 * KIB,
    ),
    case(
        "request-line-over-16KiB-gets-431-not-414",
        raw_request(target=b"/" + b"a" * 17 * KIB),
        431,
    ),
    case(
        "request-line-over-16KiB-unfinished-gets-431-not-414",
        b"GET /" + b"a" * 17 * KIB,
        431,
    ),
    case(
        "content-length-over-max-request-body-size-gets-413",
        post((b"Content-Length", b"2048"), body=b"a" * 2048),
        413,
        max_request_body_size=KIB,
    ),
    case(
        "chunked-body-over-max-request-body-size-gets-413",
        CHUNKED_POST + b"800\r\n" + b"a" * 2048 + b"\r\n0\r\n\r\n",
        413,
        reaches_app=True,
        max_request_body_size=KIB,
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "reaches_app", "config"), MALFORMED)
async def test_malformed_request_gets_its_status_and_a_close(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
    reaches_app: bool,
    config: dict[str, Any],
) -> None:
    deadlock_guard(nursery)
    bodies: list[list[dict[str, Any]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages = await read_body(receive)
        bodies.append(messages)
        if messages[-1]["type"] == "http.request":  # the whole body arrived: answer it
            await respond(send)

    served = await start_connection(nursery, app, **config)
    # The server may refuse the head and close before the rest of the bytes went out.
    with contextlib.suppress(trio.BrokenResourceError):
        await served.client.send_all(request_bytes)
    raw = await read_until_eof(served.client)  # returns at the server's EOF
    await finish(served)  # raises if an exception escaped HTTP11Connection.run
    [response] = parse_responses(raw)  # one response and nothing after it
    assert response.status == status
    assert response.header(b"connection") == b"close"
    assert response.body.startswith(str(status).encode())
    if reaches_app:
        # The body broke (or outgrew its limit) after the app began reading it: the app saw
        # a disconnect, never a whole body, and did not answer; the server did.
        [messages] = bodies
        assert messages[-1] == {"type": "http.disconnect"}
    else:
        assert bodies == []
    assert error_records(caplog) == []


# -- a head over max_header_size arriving in pieces -----------------------------------------


@pytest.mark.parametrize(
    ("config", "pieces"),
    [({}, 40), ({"max_header_size": 2 * KIB}, 10)],
    ids=["default-16KiB", "max-header-size-2KiB"],
)
async def test_head_over_max_header_size_in_pieces_gets_431(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    config: dict[str, Any],
    pieces: int,
) -> None:
    deadlock_guard(nursery)
    called = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        await respond(send)

    served = await start_connection(nursery, app, **config)
    sent = 0
    try:
        await served.client.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        for index in range(pieces):
            await trio.testing.wait_all_tasks_blocked()
            await served.client.send_all(b"X-H%d: %s\r\n" % (index, b"v" * 500))
            sent += 1
        await served.client.send_all(b"\r\n")
    except trio.BrokenResourceError:
        pass  # the server gave up on us already
    raw = await read_until_eof(served.client)
    await finish(served)
    [response] = parse_responses(raw)
    assert response.status == 431
    assert response.header(b"connection") == b"close"
    assert not called
    assert error_records(caplog) == []
    # Every piece was accepted (the server drains after its answer) or the server closed.
    assert 0 < sent <= pieces


# -- TLS on the plain port ------------------------------------------------------------------


def client_hello() -> bytes:
    """The first flight of a real TLS client (Python's ssl): a ClientHello record."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="example.com")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # handshake record
    assert hello[5:6] == b"\x01"  # ClientHello
    return hello


async def test_tls_client_hello_is_closed_without_a_response(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlock_guard(nursery)
    called = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    served = await start_connection(nursery, app)
    # A TLS client sends its hello, then waits for the server's: it never sends an EOF.
    await served.client.send_all(client_hello())
    raw = await read_until_eof(served.client)
    await served.done.wait()  # the server ended the connection on its own
    await served.client.aclose()
    # Any HTTP bytes (a 400, a 408) would only reach a TLS client as a garbled handshake.
    assert raw == b""
    assert not called
    assert error_records(caplog) == []


# -- near-misses that must be accepted --------------------------------------------------------


async def test_utf8_header_value_with_the_bytes_of_a_ring_is_accepted(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # "Å" is b"\xc3\x85" in UTF-8: its second byte is the \x85 refused above when it stands
    # alone. obs-text is allowed in a field value (RFC 9110 section 5.5), and valid UTF-8 is
    # what real clients send; the app gets the bytes unchanged.
    deadlock_guard(nursery)
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["headers"])
        await respond(send)

    served = await start_connection(nursery, app)
    await served.client.send_all(
        get((b"X-Name", b"\xc3\x85sa"), (b"Upgrade", b"h2c\xc3\x85"), (b"Connection", b"close"))
    )
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 200
    assert response.body == b"ok"
    assert (b"x-name", b"\xc3\x85sa") in seen[0]
    assert (b"upgrade", b"h2c\xc3\x85") in seen[0]
    assert error_records(caplog) == []


@pytest.mark.parametrize("value", [b"  chunked", b"chunked  ", b"\tchunked", b"CHUNKED"], ids=repr)
async def test_transfer_encoding_chunked_with_whitespace_or_case_is_chunked(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    value: bytes,
) -> None:
    # Whitespace around a field value is OWS, not part of it (RFC 9112 section 5.1), and
    # coding names are case-insensitive (RFC 9110 section 10.1.4). " chunked" is chunked: a
    # server that read it as an unknown coding would frame the body differently from a
    # proxy that did not, which is how requests get smuggled.
    deadlock_guard(nursery)
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages = await read_body(receive)
        bodies.append(b"".join(m.get("body", b"") for m in messages))
        await respond(send)

    served = await start_connection(nursery, app)
    request = raw_request(
        b"POST", b"/", [HOST, (b"Transfer-Encoding", value)], b"3\r\nabc\r\n0\r\n\r\n"
    )
    await served.client.send_all(request + raw_request(headers=[HOST, (b"Connection", b"close")]))
    first, second = parse_responses(await read_until_eof(served.client), ["POST", "GET"])
    await finish(served)
    assert (first.status, second.status) == (200, 200)
    assert bodies == [b"abc", b""]
    assert error_records(caplog) == []


@pytest.mark.parametrize(
    "lengths",
    [[b"3, 3"], [b"3", b"3"], [b"003"]],
    ids=["list", "two-headers", "leading-zeros"],
)
@pytest.mark.parametrize("limit", [None, KIB], ids=["no-body-limit", "body-limit-1KiB"])
async def test_repeated_equal_content_length_is_accepted(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    lengths: list[bytes],
    limit: int | None,
) -> None:
    # RFC 9110 section 8.6: a list of identical Content-Length values MAY be taken as that
    # one value; it frames the body the same way for every recipient. The body limit reads
    # the value h11 settled on, not the raw header.
    deadlock_guard(nursery)
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        messages = await read_body(receive)
        bodies.append(b"".join(m.get("body", b"") for m in messages))
        await respond(send)

    served = await start_connection(nursery, app, max_request_body_size=limit)
    headers = [HOST, *((b"Content-Length", length) for length in lengths)]
    await served.client.send_all(
        raw_request(b"POST", b"/", [*headers, (b"Connection", b"close")], b"abc")
    )
    [response] = parse_responses(await read_until_eof(served.client), ["POST"])
    await finish(served)
    assert response.status == 200
    assert bodies == [b"abc"]
    assert error_records(caplog) == []


async def test_head_just_under_max_header_size_is_accepted(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The limit refuses only what is over it: a 1.5 KiB head with a 2 KiB limit is served.
    deadlock_guard(nursery)
    served = await start_connection(nursery, hello_app, max_header_size=2 * KIB)
    request = get((b"X-Pad", b"p" * 1400), (b"Connection", b"close"))
    assert 1400 < len(request) < 1600
    await served.client.send_all(request)
    [response] = parse_responses(await read_until_eof(served.client))
    await finish(served)
    assert response.status == 200
    assert error_records(caplog) == []


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n", b" b\r\n\r\n"], id="fold-SP"),
        pytest.param([b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n", b"\tb\r\n\r\n"], id="fold-HTAB"),
        pytest.param(
            # A folded Transfer-Encoding hidden in another header's value once unfolded.
            [b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nX-A: a\r\n", b" chunked\r\n\r\n"],
            id="fold-hiding-chunked",
        ),
    ],
)
async def test_obs_fold_split_across_reads_gets_400_as_in_one_read(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, pieces: list[bytes]
) -> None:
    """RFC 9112 section 5.2: the fold's LF ending one read and its SP/HTAB starting the next is
    still a fold, refused with 400 exactly as when the head arrives in one read."""
    deadlock_guard(nursery)
    called: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await respond(send)

    served = await start_connection(nursery, app)
    for piece in pieces:
        await served.client.send_all(piece)
        await trio.testing.wait_all_tasks_blocked()  # the reader took this piece on its own
    raw = await read_until_eof(served.client)
    await finish(served)
    [response] = parse_responses(raw)
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    assert called == []
