"""Tier 1: the PROXY protocol reader (trio_asgi/_net/proxy_protocol.py) against HAProxy's
doc/proxy-protocol.txt: every valid v1 and v2 form, fed whole, split at every byte and one
byte at a time; the bytes after the header returned intact; each malformed form refused
with ProxyProtocolError as soon as its bad byte arrives; and, on any bytes, nothing but
None, a header or ProxyProtocolError."""

from __future__ import annotations

import ipaddress
import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._net.proxy_protocol import (
    MAX_HEADER_SIZE,
    PP2_TYPE_SSL,
    V2_SIGNATURE,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    ProxyProtocolReader,
    ProxySSL,
)

HTTP = b"GET / HTTP/1.1\r\nhost: example\r\n\r\n"


def v2(
    command: int = 1, family_transport: int = 0x11, block: bytes = b"", *, length: int | None = None
) -> bytes:
    """A v2 header: signature, version 2 and ``command``, ``family_transport``, the
    length (that of ``block`` unless given) and ``block``."""
    size = len(block) if length is None else length
    return (
        V2_SIGNATURE + bytes([0x20 | command, family_transport]) + struct.pack("!H", size) + block
    )


def inet(source: str, destination: str, sport: int, dport: int) -> bytes:
    """A v2 INET or INET6 address block."""
    return (
        ipaddress.ip_address(source).packed
        + ipaddress.ip_address(destination).packed
        + struct.pack("!HH", sport, dport)
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def ssl_tlv(client: int, verify: int = 0, *subs: bytes) -> bytes:
    """A PP2_TYPE_SSL TLV (spec 2.2.5): ``client``, ``verify``, then the sub-TLVs."""
    return tlv(PP2_TYPE_SSL, bytes([client]) + struct.pack("!I", verify) + b"".join(subs))


def unix(source: bytes, destination: bytes) -> bytes:
    return source.ljust(108, b"\x00") + destination.ljust(108, b"\x00")


def header(
    version: int,
    family: Family,
    source: tuple[str, int] | None = None,
    destination: tuple[str, int] | None = None,
    **others: object,
) -> ProxyHeader:
    """The expected header, with ``rest`` empty (each test adds its own)."""
    return ProxyHeader(version, family, source, destination, b"", **others)


VALID: dict[str, tuple[bytes, ProxyHeader]] = {
    "v1 TCP4": (
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        header(1, Family.INET, ("192.168.0.1", 56324), ("192.168.0.11", 443)),
    ),
    "v1 TCP4 longest": (
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        header(1, Family.INET, ("255.255.255.255", 65535), ("255.255.255.255", 65535)),
    ),
    "v1 TCP4 zeros": (
        b"PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n",
        header(1, Family.INET, ("0.0.0.0", 0), ("10.0.0.1", 0)),
    ),
    "v1 TCP6": (
        b"PROXY TCP6 2001:DB8::1 ::1 1234 8000\r\n",
        header(1, Family.INET6, ("2001:db8::1", 1234), ("::1", 8000)),
    ),
    "v1 TCP6 longest": (
        b"PROXY TCP6 "
        + b":".join([b"ffff"] * 8)
        + b" "
        + b":".join([b"ffff"] * 8)
        + b" 65535 65535\r\n",
        header(1, Family.INET6, (":".join(["ffff"] * 8), 65535), (":".join(["ffff"] * 8), 65535)),
    ),
    "v1 UNKNOWN short": (b"PROXY UNKNOWN\r\n", header(1, Family.UNSPEC)),
    "v1 UNKNOWN worst case (107 bytes, rest ignored)": (
        b"PROXY UNKNOWN "
        + b":".join([b"ffff"] * 8)
        + b" "
        + b":".join([b"ffff"] * 8)
        + b" 65535 65535\r\n",
        header(1, Family.UNSPEC),
    ),
    "v2 PROXY INET": (
        v2(1, 0x11, inet("203.0.113.7", "10.0.0.2", 40000, 443)),
        header(2, Family.INET, ("203.0.113.7", 40000), ("10.0.0.2", 443)),
    ),
    "v2 PROXY INET6": (
        v2(1, 0x21, inet("2001:db8::7", "::1", 65535, 80)),
        header(2, Family.INET6, ("2001:db8::7", 65535), ("::1", 80)),
    ),
    "v2 PROXY INET with TLVs": (
        v2(
            1,
            0x11,
            inet("198.51.100.1", "10.0.0.2", 1, 2)
            + tlv(0x02, b"example.com")
            + tlv(0x04, b"")
            + tlv(0x05, b"\x00" * 128),
        ),
        header(
            2,
            Family.INET,
            ("198.51.100.1", 1),
            ("10.0.0.2", 2),
            tlvs=((0x02, b"example.com"), (0x04, b""), (0x05, b"\x00" * 128)),
        ),
    ),
    "v2 PROXY INET, the client spoke TLS (PP2_TYPE_SSL, PP2_CLIENT_SSL)": (
        v2(
            1,
            0x11,
            inet("198.51.100.1", "10.0.0.2", 1, 2)
            + tlv(0x01, b"h2")
            + ssl_tlv(0x01, 0, tlv(0x21, b"TLSv1.3"), tlv(0x23, b"TLS_AES_256_GCM_SHA384")),
        ),
        header(
            2,
            Family.INET,
            ("198.51.100.1", 1),
            ("10.0.0.2", 2),
            tlvs=(
                (0x01, b"h2"),
                (
                    0x20,
                    b"\x01\x00\x00\x00\x00\x21\x00\x07TLSv1.3\x23\x00\x16TLS_AES_256_GCM_SHA384",
                ),
            ),
            ssl=ProxySSL(1, 0, ((0x21, b"TLSv1.3"), (0x23, b"TLS_AES_256_GCM_SHA384"))),
        ),
    ),
    "v2 PROXY INET6, PP2_TYPE_SSL without PP2_CLIENT_SSL, no sub-TLVs": (
        v2(1, 0x21, inet("2001:db8::7", "::1", 3, 4) + ssl_tlv(0x00, 1)),
        header(
            2,
            Family.INET6,
            ("2001:db8::7", 3),
            ("::1", 4),
            tlvs=((0x20, b"\x00\x00\x00\x00\x01"),),
            ssl=ProxySSL(0, 1),
        ),
    ),
    "v2 PROXY UNIX": (
        v2(1, 0x31, unix(b"", b"/run/haproxy.sock")),
        header(2, Family.UNIX, destination_path="/run/haproxy.sock"),
    ),
    "v2 PROXY UNIX both named, TLV": (
        v2(1, 0x31, unix(b"/tmp/c\xff", b"/run/h.sock") + tlv(0x01, b"http/1.1")),
        header(
            2,
            Family.UNIX,
            source_path="/tmp/c\\xff",
            destination_path="/run/h.sock",
            tlvs=((0x01, b"http/1.1"),),
        ),
    ),
    "v2 PROXY UNIX, two PP2_TYPE_SSL (the first counts)": (
        v2(1, 0x31, unix(b"", b"/run/h.sock") + ssl_tlv(0x07, 0) + ssl_tlv(0x00, 9)),
        header(
            2,
            Family.UNIX,
            destination_path="/run/h.sock",
            tlvs=((0x20, b"\x07" + bytes(4)), (0x20, b"\x00\x00\x00\x00\x09")),
            ssl=ProxySSL(7, 0),
        ),
    ),
    "v2 LOCAL, no addresses": (v2(0, 0x00), header(2, Family.UNSPEC)),
    "v2 LOCAL with a block, family ignored": (
        v2(0, 0xFF, inet("1.2.3.4", "5.6.7.8", 1, 2) + b"\x01"),
        header(2, Family.UNSPEC),
    ),
    "v2 PROXY UNSPEC with bytes": (v2(1, 0x00, b"ignored"), header(2, Family.UNSPEC)),
    "v2 PROXY INET over UNSPEC transport": (
        v2(1, 0x10, inet("1.2.3.4", "5.6.7.8", 1, 2)),
        header(2, Family.UNSPEC),
    ),
    "v2 PROXY INET over DGRAM (falls back to UNSPEC)": (
        v2(1, 0x12, inet("1.2.3.4", "5.6.7.8", 1, 2)),
        header(2, Family.UNSPEC),
    ),
}


def feed_all(reader: ProxyProtocolReader, pieces: list[bytes]) -> ProxyHeader:
    """Feed ``pieces`` in turn: every one but the last must ask for more."""
    for piece in pieces[:-1]:
        assert reader.feed(piece) is None
    result = reader.feed(pieces[-1])
    assert result is not None
    return result


def with_rest(expected: ProxyHeader, rest: bytes) -> ProxyHeader:
    return ProxyHeader(
        expected.version,
        expected.family,
        expected.source,
        expected.destination,
        rest,
        expected.source_path,
        expected.destination_path,
        expected.tlvs,
        expected.ssl,
    )


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_header_fed_whole(name: str) -> None:
    data, expected = VALID[name]
    assert ProxyProtocolReader().feed(data) == expected


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_bytes_after_the_header_are_returned_intact(name: str) -> None:
    data, expected = VALID[name]
    # bytes that would parse as more header, or as a second header, stay the application's
    for rest in (HTTP, data, b"\r\n", b"\x00" * 3):
        assert ProxyProtocolReader().feed(data + rest) == with_rest(expected, rest)


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_header_split_at_every_byte(name: str) -> None:
    data, expected = VALID[name]
    for cut in range(1, len(data)):
        reader = ProxyProtocolReader()
        assert feed_all(reader, [data[:cut], data[cut:] + HTTP]) == with_rest(expected, HTTP), cut


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_header_one_byte_at_a_time(name: str) -> None:
    data, expected = VALID[name]
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert feed_all(ProxyProtocolReader(), pieces) == expected
    # the HTTP bytes arrive later, in their own read: none was taken for the header
    assert feed_all(ProxyProtocolReader(), [*pieces[:-1], pieces[-1] + HTTP[:1]]).rest == b"G"


# name -> (bytes, a part of the reason); each is refused at its last byte, not before
INVALID: dict[str, tuple[bytes, str]] = {
    "HTTP request": (b"G", "not a PROXY"),
    "POST (P, then not R)": (b"PO", "not a PROXY"),
    "TLS ClientHello": (b"\x16", "not a PROXY"),
    "lowercase proxy": (b"p", "not a PROXY"),
    "PROXY without its space": (b"PROXYT", "not a PROXY"),
    "v1 too long without CRLF": (b"PROXY UNKNOWN " + b"f" * 93, "no CRLF in the first 107"),
    "v1 LF without CR": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR"),
    "v1 unknown protocol": (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"),
    "v1 UNKNOWN glued": (b"PROXY UNKNOWNX\r\n", "unknown protocol"),
    "v1 empty": (b"PROXY \r\n", "unknown protocol"),
    "v1 two spaces": (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "four fields"),
    "v1 trailing space": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "four fields"),
    "v1 missing port": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "four fields"),
    "v1 tab": (b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"),
    "v1 octet over 255": (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    "v1 octet with a leading zero": (b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "bad TCP4"),
    "v1 three octets": (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    "v1 IPv6 under TCP4": (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    "v1 IPv4 under TCP6": (b"PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "bad TCP6 address"),
    "v1 IPv6 zone index": (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad TCP6 address"),
    "v1 IPv6 two double colons": (b"PROXY TCP6 1::2::3 ::1 1 2\r\n", "bad TCP6 address"),
    "v1 IPv6 too many groups": (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "bad TCP6"),
    "v1 host name": (b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    "v1 non-ASCII address": (b"PROXY TCP4 \xff.2.3.4 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    "v1 port over 65535": (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad port"),
    "v1 port with a leading zero": (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "bad port"),
    "v1 port with a sign": (b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "bad port"),
    "v1 port with an underscore": (b"PROXY TCP4 1.2.3.4 5.6.7.8 8_0 2\r\n", "bad port"),
    "v1 negative port": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "bad port"),
    "v1 empty port": (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "bad port"),
    "v2 bad signature": (V2_SIGNATURE[:7] + b"X", "not a PROXY"),
    "v2 signature of v1 draft (CRLF CRLF then not NUL)": (b"\r\n\r\nG", "not a PROXY"),
    "v2 version 1": (V2_SIGNATURE + b"\x11", "version 1"),
    "v2 version 3": (V2_SIGNATURE + b"\x31", "version 3"),
    "v2 unknown command": (V2_SIGNATURE + b"\x22", "unknown command 0x2"),
    "v2 unknown family": (v2(1, 0x41, length=12), "unknown family/transport 0x41"),
    "v2 unknown transport": (v2(1, 0x13, length=12), "unknown family/transport 0x13"),
    "v2 INET length shorter than addresses": (
        v2(1, 0x11, length=11),
        "length 11 shorter than the 12",
    ),
    "v2 INET6 length shorter than addresses": (v2(1, 0x21, length=35), "shorter than the 36"),
    "v2 UNIX length shorter than addresses": (v2(1, 0x31, length=215), "shorter than the 216"),
    "v2 DGRAM length shorter than addresses": (v2(1, 0x12, length=0), "shorter than the 12"),
    "v2 truncated TLV header": (v2(1, 0x11, bytes(12) + b"\x01\x00"), "truncated TLV"),
    "v2 TLV overruns the header": (v2(1, 0x11, bytes(12) + tlv(0x02, b"abc")[:-1]), "overruns"),
    "v2 PP2_TYPE_SSL under 5 bytes": (
        v2(1, 0x11, bytes(12) + tlv(0x20, b"\x01\x00\x00\x00")),
        "PP2_TYPE_SSL of 4 bytes, under 5",
    ),
    "v2 PP2_TYPE_SSL truncated sub-TLV": (
        v2(1, 0x11, bytes(12) + ssl_tlv(0x01, 0, b"\x21\x00")),
        "truncated PP2_TYPE_SSL sub-TLV",
    ),
    "v2 PP2_TYPE_SSL sub-TLV overruns it": (
        v2(1, 0x11, bytes(12) + ssl_tlv(0x01, 0, tlv(0x21, b"TLSv1.3")[:-1]) + tlv(0x04, b"")),
        "PP2_TYPE_SSL sub-TLV 0x21 overruns PP2_TYPE_SSL",
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_header_is_refused_by_its_last_byte(name: str) -> None:
    data, reason = INVALID[name]
    reader = ProxyProtocolReader()
    for i in range(len(data) - 1):
        assert reader.feed(data[i : i + 1]) is None, f"refused early, at byte {i}"
    with pytest.raises(ProxyProtocolError, match=reason):
        reader.feed(data[-1:])


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_header_is_refused_fed_whole_with_more_bytes(name: str) -> None:
    data, reason = INVALID[name]
    with pytest.raises(ProxyProtocolError, match=reason):
        ProxyProtocolReader().feed(data + HTTP)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "closed before a PROXY header"),
        (b"PROXY TCP4 1.2.3.4", "closed 18 bytes into the PROXY header"),
        (VALID["v2 PROXY INET"][0][:-1], "closed 27 bytes into"),
        (V2_SIGNATURE[:5], "closed 5 bytes into"),
    ],
)
def test_eof_before_the_header_is_complete(data: bytes, reason: str) -> None:
    reader = ProxyProtocolReader()
    if data:
        assert reader.feed(data) is None
    with pytest.raises(ProxyProtocolError, match=reason):
        reader.feed(b"")


def test_a_reader_is_spent_after_its_header_or_its_error() -> None:
    reader = ProxyProtocolReader()
    assert reader.feed(b"PROXY UNKNOWN\r\n") is not None
    with pytest.raises(RuntimeError, match="returned its header or error"):
        reader.feed(HTTP)
    reader = ProxyProtocolReader()
    with pytest.raises(ProxyProtocolError):
        reader.feed(b"GET")
    with pytest.raises(RuntimeError):
        reader.feed(b"PROXY UNKNOWN\r\n")


def test_a_smaller_cap_refuses_a_v2_header_once_its_length_is_read() -> None:
    data = VALID["v2 PROXY INET with TLVs"][0]
    reader = ProxyProtocolReader(max_size=16 + 36)
    with pytest.raises(ProxyProtocolError, match=f"header of {len(data)} bytes, over 52"):
        reader.feed(data[:16])  # the block has not arrived: its size is enough
    reader = ProxyProtocolReader(max_size=16 + 12)
    assert reader.feed(VALID["v2 PROXY INET"][0]) is not None  # exactly at the cap


def test_the_default_cap_takes_the_largest_v2_header() -> None:
    block = inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x04, bytes(0xFFFF - 12 - 3))
    data = v2(1, 0x11, block)
    assert len(data) == MAX_HEADER_SIZE
    result = ProxyProtocolReader().feed(data + HTTP)
    assert result is not None
    assert result.rest == HTTP


def test_a_v1_line_of_108_bytes_is_refused_at_its_107th() -> None:
    line = VALID["v1 UNKNOWN worst case (107 bytes, rest ignored)"][0]
    longer = line[:-2] + b"5\r\n"
    reader = ProxyProtocolReader()
    assert reader.feed(longer[:106]) is None
    with pytest.raises(ProxyProtocolError, match="no CRLF in the first 107 bytes"):
        reader.feed(longer[106:107])


def test_a_smaller_cap_also_bounds_a_v1_line() -> None:
    with pytest.raises(ProxyProtocolError, match="no CRLF in the first 40 bytes"):
        ProxyProtocolReader(max_size=40).feed(VALID["v1 TCP4"][0])


@pytest.mark.parametrize("size", [15, MAX_HEADER_SIZE + 1, 0, -1])
def test_a_cap_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match=f"max_size must be 16 to 65551 bytes, not {size}"):
        ProxyProtocolReader(max_size=size)


def _outcome(pieces: list[bytes]) -> tuple[ProxyHeader, bytes] | str | None:
    """What feeding ``pieces`` gives: the header (its ``rest`` emptied) with everything
    after it (its ``rest`` and the pieces not fed), None, or the error's reason."""
    reader = ProxyProtocolReader()
    try:
        for i, piece in enumerate(pieces):
            result = reader.feed(piece)
            if result is not None:
                return with_rest(result, b""), result.rest + b"".join(pieces[i + 1 :])
    except ProxyProtocolError as exc:
        return str(exc)
    return None


# Inputs that reach deep into each parser, not only refused at the first byte.
ANY_START = st.sampled_from(
    [b"", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN", V2_SIGNATURE]
    + [V2_SIGNATURE + bytes([0x20 | c, f]) for c in (0, 1) for f in (0x11, 0x21, 0x31)]
)


@given(start=ANY_START, data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 320)))
def test_any_bytes_give_a_header_none_or_proxy_protocol_error(
    start: bytes, data: bytes, cuts: list[int]
) -> None:
    whole = start + data
    bounds = sorted({0, len(whole), *(c for c in cuts if c < len(whole))})
    pieces = [whole[a:b] for a, b in itertools.pairwise(bounds) if b > a] or [whole]
    outcome = _outcome([*pieces, b""])  # EOF at the end: it never asks for more
    assert isinstance(outcome, (tuple, str))
    # the same verdict however the bytes are cut, and no byte after the header lost
    assert _outcome([whole, b""]) == outcome


@given(
    six=st.booleans(),
    source=st.integers(0, 2**128 - 1),
    destination=st.integers(0, 2**128 - 1),
    ports=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    tlvs=st.lists(
        st.tuples(
            st.integers(0, 255).filter(lambda kind: kind != PP2_TYPE_SSL), st.binary(max_size=40)
        ),
        max_size=5,
    ),
    rest=st.binary(max_size=40),
)
def test_any_v2_inet_header_reads_back(
    six: bool,
    source: int,
    destination: int,
    ports: tuple[int, int],
    tlvs: list[tuple[int, bytes]],
    rest: bytes,
) -> None:
    make = ipaddress.IPv6Address if six else ipaddress.IPv4Address
    hosts = [str(make(a % (2**128 if six else 2**32))) for a in (source, destination)]
    block = inet(hosts[0], hosts[1], *ports) + b"".join(tlv(k, v) for k, v in tlvs)
    expected = ProxyHeader(
        2,
        Family.INET6 if six else Family.INET,
        (hosts[0], ports[0]),
        (hosts[1], ports[1]),
        rest,
        tlvs=tuple(tlvs),
    )
    assert ProxyProtocolReader().feed(v2(1, 0x21 if six else 0x11, block) + rest) == expected
    # v1 says the same in text, for the addresses
    family = b"TCP6" if six else b"TCP4"
    line = b"PROXY %s %s %s %d %d\r\n" % (family, hosts[0].encode(), hosts[1].encode(), *ports)
    result = ProxyProtocolReader().feed(line + rest)
    assert result == ProxyHeader(1, expected.family, expected.source, expected.destination, rest)


@pytest.mark.parametrize(
    ("name", "tls", "version"),
    [
        ("v2 PROXY INET, the client spoke TLS (PP2_TYPE_SSL, PP2_CLIENT_SSL)", True, "TLSv1.3"),
        ("v2 PROXY INET6, PP2_TYPE_SSL without PP2_CLIENT_SSL, no sub-TLVs", False, None),
        ("v2 PROXY UNIX, two PP2_TYPE_SSL (the first counts)", True, None),
        ("v2 PROXY INET with TLVs", False, None),
        ("v2 LOCAL, no addresses", False, None),
        ("v1 TCP4", False, None),
    ],
)
def test_tls_is_pp2_client_ssl_of_the_ssl_tlv(name: str, tls: bool, version: str | None) -> None:
    result = ProxyProtocolReader().feed(VALID[name][0])
    assert result is not None
    assert result.tls is tls
    assert (result.ssl.version if result.ssl is not None else None) == version


@given(
    client=st.integers(0, 255),
    verify=st.integers(0, 2**32 - 1),
    subs=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=4),
)
def test_any_ssl_tlv_reads_back(client: int, verify: int, subs: list[tuple[int, bytes]]) -> None:
    block = inet("1.2.3.4", "5.6.7.8", 1, 2) + ssl_tlv(client, verify, *(tlv(*s) for s in subs))
    result = ProxyProtocolReader().feed(v2(1, 0x11, block))
    assert result is not None
    assert result.ssl == ProxySSL(client, verify, tuple(subs))
    assert result.tls is bool(client & 0x01)
