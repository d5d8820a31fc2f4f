"""Tier 1: the sans-IO pieces of the WebSocket package, without trio or a connection.

- ``InboundMessages`` (trio_asgi/_ws/inbound.py): how received data frames are counted
  toward ``ws_max_size`` (every frame but a message's last counts as at least
  ``FRAGMENT_MIN_SIZE`` bytes, text as UTF-8), joined, and queued within ``ws_max_queue``.
- ``UpgradeHandshake`` (trio_asgi/_ws/handshake.py): the HTTP/1.1 handshake's checks and
  answers (RFC 6455 section 4), driven by a client-side wsproto.
- ``WebSocketSettings.from_config``: each setting is its own ``Config`` field.

The same rules are tested end to end in tests/test_websocket_limits.py and
tests/test_websocket_driver.py.
"""

from __future__ import annotations

import pytest
from wsproto.events import BytesMessage, RejectConnection, TextMessage
from wsproto.utilities import RemoteProtocolError

from trio_asgi import Config, InvalidMessage
from trio_asgi._http.request import RequestHead
from trio_asgi._ws.handshake import UpgradeHandshake
from trio_asgi._ws.inbound import FRAGMENT_MIN_SIZE, TOO_BIG, InboundMessages
from trio_asgi._ws.settings import WebSocketSettings


def fragment(data: bytes | str, *, last: bool = False) -> BytesMessage | TextMessage:
    if isinstance(data, str):
        return TextMessage(data=data, frame_finished=True, message_finished=last)
    return BytesMessage(data=data, frame_finished=True, message_finished=last)


def test_a_message_in_one_frame_is_queued_as_it_came() -> None:
    inbound = InboundMessages(max_size=10, max_queue=4)
    payload = b"0123456789"
    assert inbound.add(fragment(payload, last=True)) == 10
    [(message, counted)] = inbound.received
    assert message == {"type": "websocket.receive", "bytes": payload}
    assert message["bytes"] is payload  # no copy
    assert counted == inbound.queued_size == 10


def test_fragments_count_at_least_fragment_min_size_each() -> None:
    inbound = InboundMessages(max_size=3 * FRAGMENT_MIN_SIZE + 2, max_queue=4)
    for _ in range(3):
        assert inbound.add(fragment(b"a")) == 1  # counted as FRAGMENT_MIN_SIZE
    assert not inbound.received
    assert inbound.add(fragment(b"bb", last=True)) == 2
    [(message, counted)] = inbound.received
    assert message == {"type": "websocket.receive", "bytes": b"aaabb"}
    assert counted == 3 * FRAGMENT_MIN_SIZE + 2


def test_a_piece_over_ws_max_size_is_too_big() -> None:
    inbound = InboundMessages(max_size=3 * FRAGMENT_MIN_SIZE + 2, max_queue=4)
    for _ in range(3):
        inbound.add(fragment(b"a"))
    assert inbound.add(fragment(b"bbb", last=True)) == TOO_BIG
    assert not inbound.received
    assert inbound.queued_size == 0


def test_text_counts_its_utf8_bytes_and_joins_across_fragments() -> None:
    inbound = InboundMessages(max_size=FRAGMENT_MIN_SIZE + 4, max_queue=4)
    assert inbound.add(fragment("\N{EURO SIGN}")) == 3  # 3 bytes in UTF-8
    assert inbound.add(fragment("\N{LATIN SMALL LETTER E WITH ACUTE}", last=True)) == 2
    [(message, counted)] = inbound.received
    assert message == {"type": "websocket.receive", "text": "\N{EURO SIGN}\u00e9"}
    assert counted == FRAGMENT_MIN_SIZE + 2
    inbound.add(fragment("\N{EURO SIGN}"))
    assert inbound.add(fragment("\N{EURO SIGN}\N{EURO SIGN}", last=True)) == TOO_BIG  # 12 > 10


def test_the_queue_is_full_by_count_or_by_bytes() -> None:
    by_count = InboundMessages(max_size=100, max_queue=2)
    by_count.add(fragment(b"x", last=True))
    assert not by_count.full()
    by_count.add(fragment(b"y", last=True))
    assert by_count.full()
    by_bytes = InboundMessages(max_size=20, max_queue=10)
    by_bytes.add(BytesMessage(data=b"z" * 19, frame_finished=False, message_finished=False))
    assert not by_bytes.full()  # nothing queued: the message in progress may reach the limit
    by_bytes.add(fragment(b"z", last=True))
    assert by_bytes.full()  # 20 bytes queued
    by_bytes.received.clear()
    by_bytes.queued_size = 0
    by_bytes.add(fragment(b"q" * 10, last=True))
    assert not by_bytes.full()
    by_bytes.add(fragment(b"q" * 9))
    assert not by_bytes.full()  # 10 queued + 9 in progress
    by_bytes.add(fragment(b"q"))
    assert by_bytes.full()  # 10 queued + 10 in progress


def test_drop_forgets_the_message_in_progress() -> None:
    inbound = InboundMessages(max_size=100, max_queue=4)
    inbound.add(fragment(b"old"))
    inbound.drop()
    inbound.add(fragment(b"new", last=True))
    assert inbound.received[0][0]["bytes"] == b"new"


def request_head(version: bytes = b"1.1", subprotocols: bytes | None = None) -> RequestHead:
    """An upgrade request's head as the HTTP/1.1 parsers give it (RFC 6455 section 4.1)."""
    headers = [
        (b"host", b"test"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ]
    if subprotocols is not None:
        headers.append((b"sec-websocket-protocol", subprotocols))
    return RequestHead(b"GET", b"/chat", version, headers, keep_alive=True, expect_continue=False)


def test_the_handshake_accepts_with_the_offered_subprotocol() -> None:
    handshake = UpgradeHandshake(request_head(subprotocols=b"b, a"))
    assert handshake.subprotocols == ["b", "a"]
    data, connection = handshake.accept("a", [], [(b"x-extra", b"1")])
    assert data.startswith(b"HTTP/1.1 101 ")
    # RFC 6455 section 1.3's example key and answer
    assert b"\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n" in data.lower()
    assert b"\r\nsec-websocket-protocol: a\r\n" in data.lower()
    assert b"\r\nx-extra: 1\r\n" in data
    assert connection.send(TextMessage(data="hi")) == b"\x81\x02hi"


def test_the_handshake_refuses_a_subprotocol_not_offered() -> None:
    handshake = UpgradeHandshake(request_head(subprotocols=b"a"))
    with pytest.raises(InvalidMessage, match=r"'websocket\.accept' was refused"):
        handshake.accept("z", [], [])


def test_the_handshake_refusal_and_its_body() -> None:
    handshake = UpgradeHandshake(request_head())
    head = handshake.refusal(403, [(b"content-length", b"2")], has_body=True)
    assert head.startswith(b"HTTP/1.1 403 ")
    assert handshake.refusal_body(b"no", finished=True) == b"no"


def test_a_handshake_on_http_1_0_is_a_400() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        UpgradeHandshake(request_head(b"1.0"))
    assert isinstance(caught.value.event_hint, RejectConnection)
    assert caught.value.event_hint.status_code == 400


#: Each WebSocketSettings field, the Config field it comes from, and a value that is no
#: other field's (nor a default), so a field read from the wrong place is caught.
SETTINGS = [
    ("max_size", "ws_max_size", 1234),
    ("max_queue", "ws_max_queue", 7),
    ("ping_interval", "ws_ping_interval", 3.5),
    ("ping_timeout", "ws_ping_timeout", 1.25),
    ("per_message_deflate", "ws_per_message_deflate", False),
    ("disconnect_timeout", "disconnect_timeout", 9.0),
    ("access_log", "access_log", False),
]


def test_the_settings_are_the_configs_fields() -> None:
    config = Config(**{field: value for _, field, value in SETTINGS})  # type: ignore[arg-type]
    settings = WebSocketSettings.from_config(config)
    assert {name: getattr(settings, name) for name, _, _ in SETTINGS} == {
        name: value for name, _, value in SETTINGS
    }
    assert len(SETTINGS) == len(WebSocketSettings.__slots__)  # every field is checked
