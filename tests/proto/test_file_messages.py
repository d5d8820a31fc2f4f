"""Tier 1: the pure parts of ``http.response.zerocopysend`` and ``http.response.pathsend``:
the message checks (``_http/messages.py``), the framing around file bytes
(``ResponseWriter.frame_around``) and the Content-Length a file sets
(``_http/files.with_file_length``)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trio_asgi import InvalidMessage
from trio_asgi._h11.response import FramingError, ResponseWriter
from trio_asgi._http.files import with_file_length
from trio_asgi._http.messages import ZeroCopySend, check_pathsend, check_zerocopysend


@pytest.fixture
def file(tmp_path: Path) -> Iterator[Any]:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with path.open("rb") as opened:
        yield opened


def test_zerocopysend_defaults(file: Any) -> None:
    message = {"type": "http.response.zerocopysend", "file": file}
    assert check_zerocopysend(message) == ZeroCopySend(file.fileno(), None, None, False)


def test_zerocopysend_takes_every_key_and_an_int_descriptor(file: Any) -> None:
    fd = file.fileno()
    message = {"file": fd, "offset": 3, "count": 4, "more_body": True}
    assert check_zerocopysend(message) == ZeroCopySend(fd, 3, 4, True)


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"file": io.BytesIO(b"x")}, "no OS file descriptor"),
        ({"file": None}, "'file' must be a file object or descriptor"),
        ({"file": -3}, "'file' must have a file descriptor"),
        ({"file": True}, "'file'"),
        ({"offset": 1.5}, "'offset'"),
        ({"offset": True}, "'offset'"),
        ({"count": -1}, "'count'"),
        ({"more_body": "yes"}, "'more_body'"),
    ],
)
def test_zerocopysend_refuses(file: Any, keys: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidMessage, match=match):
        check_zerocopysend({"file": file, **keys})


def test_zerocopysend_refuses_a_closed_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    closed = path.open("rb")
    closed.close()
    with pytest.raises(InvalidMessage, match="no OS file descriptor"):
        check_zerocopysend({"file": closed})


@pytest.mark.parametrize("path", ["relative", "", None, b"/bytes", Path("/a/path")])
def test_pathsend_needs_an_absolute_str_path(path: Any) -> None:
    with pytest.raises(InvalidMessage, match="absolute path"):
        check_pathsend({"path": path})


def test_pathsend_returns_its_path() -> None:
    assert check_pathsend({"path": os.path.abspath("x")}) == os.path.abspath("x")


def writer(headers: list[tuple[bytes, bytes]], method: bytes = b"GET") -> ResponseWriter:
    return ResponseWriter(200, headers, request_method=method, http_version=b"1.1", keep_alive=True)


def test_frame_around_is_a_chunk_under_chunked_encoding() -> None:
    chunked = writer([])
    assert chunked.frame_around(300) == (b"12c\r\n", b"\r\n")
    assert chunked.frame_around(0) == (b"", b"")  # an empty chunk would end the body
    assert chunked.end() == b"0\r\n\r\n"


def test_frame_around_counts_against_content_length() -> None:
    sized = writer([(b"content-length", b"10")])
    assert sized.frame_around(6) == (b"", b"")
    with pytest.raises(FramingError, match="Too much"):
        sized.frame_around(5)
    assert sized.frame_around(4) == (b"", b"")
    assert sized.end() == b""


def test_frame_around_short_of_content_length_fails_at_the_end() -> None:
    sized = writer([(b"content-length", b"10")])
    sized.frame_around(9)
    with pytest.raises(FramingError, match="Too little"):
        sized.end()


def test_frame_around_a_head_response_is_nothing() -> None:
    head = writer([(b"content-length", b"10")], method=b"HEAD")
    assert head.frame_around(10_000) == (b"", b"")
    assert head.no_body


@pytest.mark.parametrize(
    ("headers", "status", "more_body", "expected"),
    [
        ([], 200, False, [(b"content-length", b"42")]),
        ([(b"x", b"1")], 404, False, [(b"x", b"1"), (b"content-length", b"42")]),
        ([], 200, True, []),  # more body follows: the length is unknown
        ([], 204, False, []),
        ([], 304, False, []),
        ([(b"Content-Length", b"42")], 200, False, [(b"Content-Length", b"42")]),
    ],
)
def test_with_file_length(
    headers: list[tuple[bytes, bytes]],
    status: int,
    more_body: bool,
    expected: list[tuple[bytes, bytes]],
) -> None:
    assert with_file_length(headers, status, 42, more_body) == expected
