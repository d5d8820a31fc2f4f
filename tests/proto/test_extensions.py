"""Tier 1: the ASGI extensions ``http.response.trailers`` and ``http.response.early_hint``:
their message checks (``trio_asgi._http.extensions``) and their bytes (``_h11/response.py``),
read back with a client-side h11."""

from __future__ import annotations

import logging
from typing import Any

import h11
import pytest

from trio_asgi import InvalidMessage, UnexpectedMessage
from trio_asgi._h11.response import ResponseWriter, early_hints
from trio_asgi._http.extensions import (
    FORBIDDEN_TRAILERS,
    Trailers,
    accepts_trailers,
    check_early_hint,
    check_response_trailers,
    check_trailers_flag,
    early_hint_links,
    http_extensions,
)

TRAILERS = "http.response.trailers"


def trailers_message(headers: Any = (), **keys: Any) -> dict[str, Any]:
    return {"type": TRAILERS, "headers": headers, **keys}


# -- advertising and TE ------------------------------------------------------------------


def test_trailers_and_early_hints_only_for_http_1_1() -> None:
    files = {"http.response.pathsend": {}, "http.response.zerocopysend": {}}
    assert http_extensions(b"1.1") == {**files, TRAILERS: {}, "http.response.early_hint": {}}
    assert http_extensions(b"1.0") == files
    assert http_extensions(b"1.1") is not http_extensions(b"1.1")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"te", b"trailers")], True),
        ([(b"te", b"Trailers")], True),
        ([(b"te", b"gzip;q=0.5, trailers")], True),
        ([(b"te", b"deflate"), (b"te", b" trailers ")], True),
        ([(b"te", b"gzip")], False),
        ([(b"te", b"trailersx")], False),
        ([(b"x-te", b"trailers")], False),
        ([], False),
    ],
)
def test_accepts_trailers(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert accepts_trailers(headers) is expected


# -- message checks ----------------------------------------------------------------------


def test_check_trailers_flag() -> None:
    assert check_trailers_flag({"type": "http.response.start"}) is False
    assert check_trailers_flag({"trailers": True}) is True
    with pytest.raises(InvalidMessage, match="'trailers' must be a bool"):
        check_trailers_flag({"trailers": 1})


def test_check_response_trailers_accepts_valid_messages() -> None:
    message = trailers_message([[b"x-checksum", b"abc"], (b"Server-Timing", b"db;dur=53")])
    assert check_response_trailers(message) == (
        [(b"x-checksum", b"abc"), (b"Server-Timing", b"db;dur=53")],
        False,
    )
    assert check_response_trailers({"type": TRAILERS, "more_trailers": True}) == ([], True)


@pytest.mark.parametrize(
    ("message", "names"),
    [
        (trailers_message(5), "'headers' must be an iterable"),
        (trailers_message([(b"a",)]), "'headers' must be an iterable"),
        (trailers_message([("x-a", b"1")]), "must be bytes"),
        (trailers_message([(b"x-a", "1")]), "must be bytes"),
        (trailers_message([(b"x a", b"1")]), "invalid name"),
        (trailers_message([(b":status", b"200")]), "invalid name"),
        (trailers_message([(b"", b"1")]), "invalid name"),
        (trailers_message([(b"x-a", b"1\r\nx-b: 2")]), "invalid value"),
        (trailers_message([(b"x-a", b"1\n")]), "invalid value"),
        (trailers_message([(b"x-a", b"1\x00")]), "invalid value"),
        (trailers_message([(b"Content-Length", b"1")]), "must not carry"),
        (trailers_message([(b"transfer-encoding", b"chunked")]), "must not carry"),
        (trailers_message([(b"host", b"x")]), "must not carry"),
        (trailers_message([(b"trailer", b"x-a")]), "must not carry"),
        (trailers_message(more_trailers="no"), "'more_trailers' must be a bool"),
    ],
)
def test_check_response_trailers_refuses(message: dict[str, Any], names: str) -> None:
    with pytest.raises(InvalidMessage, match=names):
        check_response_trailers(message)


@pytest.mark.parametrize("name", sorted(FORBIDDEN_TRAILERS))
def test_every_forbidden_trailer_is_refused(name: bytes) -> None:
    with pytest.raises(InvalidMessage, match=r"RFC 9110 section 6\.5\.1"):
        check_response_trailers(trailers_message([(name, b"1")]))


def test_check_early_hint() -> None:
    links = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]
    message = {"type": "http.response.early_hint", "links": iter(links)}
    assert check_early_hint(message) == links


@pytest.mark.parametrize(
    "links",
    [None, b"</a>; rel=preload", "</a>", 5, ["</a>"], [b""], [b"</a>\r\nx: y"], [b"</a>\x00"]],
)
def test_check_early_hint_refuses(links: Any) -> None:
    message: dict[str, Any] = {"type": "http.response.early_hint"}
    if links is not None:
        message["links"] = links
    with pytest.raises(InvalidMessage, match="early_hint"):
        check_early_hint(message)


def test_early_hint_links_ignored_for_http_1_0_and_after_the_head(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = {"type": "http.response.early_hint", "links": [b"</a>; rel=preload"]}
    assert early_hint_links(message, b"1.1", False) == [b"</a>; rel=preload"]
    with caplog.at_level(logging.DEBUG, logger="trio_asgi.error"):
        assert early_hint_links(message, b"1.0", False) is None
        assert early_hint_links(message, b"1.1", True) is None
    assert [r.getMessage() for r in caplog.records] == [
        "'http.response.early_hint' ignored: HTTP/1.0 request",
        "'http.response.early_hint' ignored: the response head is written",
    ]
    with pytest.raises(InvalidMessage):  # checked even when it would be ignored
        early_hint_links({"type": "http.response.early_hint"}, b"1.0", True)


# -- the trailer section's state ---------------------------------------------------------


def test_trailers_before_the_last_body_message_are_refused() -> None:
    with pytest.raises(UnexpectedMessage, match=r"before the last 'http\.response\.body'"):
        Trailers().add(trailers_message())


def test_trailers_collected_when_sent() -> None:
    trailers = Trailers()
    assert trailers.end_body(True, [(b"te", b"trailers")]) is True
    assert trailers.add(trailers_message([(b"x-a", b"1")], more_trailers=True)) is False
    assert trailers.add(trailers_message([(b"x-b", b"2")])) is True
    assert trailers.fields == [(b"x-a", b"1"), (b"x-b", b"2")]


@pytest.mark.parametrize(
    ("chunked", "headers", "why"),
    [
        (True, [], "the client did not send 'TE: trailers'"),
        (False, [(b"te", b"trailers")], "the body is not chunked"),
    ],
)
def test_trailers_dropped(
    chunked: bool, headers: list[tuple[bytes, bytes]], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    trailers = Trailers()
    with caplog.at_level(logging.DEBUG, logger="trio_asgi.error"):
        assert trailers.end_body(chunked, headers) is False
    assert [r.getMessage() for r in caplog.records] == [f"HTTP trailers will be dropped: {why}"]
    assert trailers.add(trailers_message([(b"x-a", b"1")])) is True
    assert trailers.fields == []
    with pytest.raises(InvalidMessage):  # still checked
        trailers.add(trailers_message([(b"content-length", b"1")]))


# -- bytes -------------------------------------------------------------------------------


def client_reading(data: bytes, method: str = "GET") -> list[Any]:
    """Every event a client-side h11 reads from ``data``."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x"), ("TE", "trailers")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    events = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            return events


def writer(headers: list[tuple[bytes, bytes]], version: bytes = b"1.1") -> ResponseWriter:
    return ResponseWriter(
        200, headers, request_method=b"GET", http_version=version, keep_alive=True
    )


def test_chunked_end_with_trailers() -> None:
    response = writer([(b"trailer", b"x-checksum, Server-Timing")])
    assert response.chunked
    end = response.end([(b"x-checksum", b"abc"), (b"Server-Timing", b"db;dur=53")])
    assert end == b"0\r\nx-checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n"
    events = client_reading(response.head + response.body(b"hi") + end)
    assert isinstance(events[-1], h11.EndOfMessage)
    assert list(events[-1].headers) == [(b"x-checksum", b"abc"), (b"server-timing", b"db;dur=53")]
    assert response.end([]) == b"0\r\n\r\n"


def test_content_length_end_drops_trailers() -> None:
    response = writer([(b"content-length", b"2")])
    assert not response.chunked
    response.body(b"hi")
    assert response.end([(b"x-checksum", b"abc")]) == b""


def test_http_1_0_body_is_not_chunked() -> None:
    assert not writer([], version=b"1.0").chunked


def test_early_hints_bytes() -> None:
    links = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]
    data = early_hints(links)
    assert data == (
        b"HTTP/1.1 103 Early Hints\r\n"
        b"link: </style.css>; rel=preload; as=style\r\n"
        b"link: </app.js>; rel=preload; as=script\r\n"
        b"\r\n"
    )
    final = writer([(b"content-length", b"0")])
    [hint, response, end] = client_reading(data + final.head)
    assert isinstance(hint, h11.InformationalResponse)
    assert hint.status_code == 103
    assert [value for name, value in hint.headers if name == b"link"] == links
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    assert isinstance(end, h11.EndOfMessage)
