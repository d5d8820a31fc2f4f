"""Tier 1: the proxy-header trust model (``_http/forwarded.py``), table-driven.

Each row of a table is one rule of the module docstring, or a spoofing attempt it defeats:
a client that writes its own ``X-Forwarded-For`` or ``Forwarded`` in front of what the proxy
appends, a peer that is not trusted, ``*`` and ``unix``.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._errors import ConfigError
from trio_asgi._http.forwarded import (
    DEFAULT_FORWARDED_ALLOW_IPS,
    Forwarded,
    TrustedProxies,
    resolve_forwarded,
)
from trio_asgi._types import Address

Headers = list[tuple[bytes, bytes]]

LOCAL: Address = ("127.0.0.1", 50000)
CHAIN = "127.0.0.1,10.0.0.0/8"  # nginx on the host, an internal load balancer in 10/8

# -- the trust list ---------------------------------------------------------------------------

TRUST_CASES = [
    # (forwarded_allow_ips, peer host, is_unix, trusted?)
    (DEFAULT_FORWARDED_ALLOW_IPS, "127.0.0.1", False, True),
    (DEFAULT_FORWARDED_ALLOW_IPS, "::1", False, True),
    (DEFAULT_FORWARDED_ALLOW_IPS, "0:0:0:0:0:0:0:1", False, True),  # another spelling of ::1
    (DEFAULT_FORWARDED_ALLOW_IPS, "::ffff:127.0.0.1", False, True),  # dual-stack socket
    (DEFAULT_FORWARDED_ALLOW_IPS, "127.0.0.2", False, False),
    (DEFAULT_FORWARDED_ALLOW_IPS, "10.0.0.1", False, False),
    (DEFAULT_FORWARDED_ALLOW_IPS, None, False, False),
    (DEFAULT_FORWARDED_ALLOW_IPS, None, True, False),  # a Unix socket needs "unix"
    (DEFAULT_FORWARDED_ALLOW_IPS, "not-an-address", False, False),
    ("10.0.0.0/8", "10.200.3.4", False, True),
    ("10.0.0.0/8", "11.0.0.1", False, False),
    ("10.0.0.0/8", "::ffff:10.1.1.1", False, True),
    ("fd00::/8", "fd12:3456::1", False, True),
    ("fd00::/8", "fe80::1", False, False),
    ("2001:db8::1", "2001:DB8:0::1", False, True),
    ("unix", None, True, True),
    ("unix", "127.0.0.1", False, False),
    ("*", "203.0.113.9", False, True),
    ("*", None, True, True),
    ("*", None, False, True),
    ("", "127.0.0.1", False, False),  # the empty list trusts no one
    (" 127.0.0.1 , , ::1 ", "::1", False, True),  # blanks and empty entries are skipped
    ("UNIX", None, True, True),
]


@pytest.mark.parametrize(("allow", "host", "is_unix", "expected"), TRUST_CASES)
def test_trusts(allow: str, host: str | None, is_unix: bool, expected: bool) -> None:
    assert TrustedProxies.parse(allow).trusts(host, is_unix) is expected


def test_plain_addresses_are_kept_as_canonical_strings() -> None:
    trusted = TrustedProxies.parse("127.0.0.1, 0:0::1, 10.0.0.0/8")
    assert trusted.addresses == frozenset({"127.0.0.1", "::1"})
    assert [str(network) for network in trusted.networks] == ["10.0.0.0/8"]
    with pytest.raises(AttributeError):
        trusted.unix = True  # type: ignore[misc]


BAD_ENTRIES = [
    ("localhost", "'localhost' is not an IP address"),
    ("127.0.0.1,proxy.internal", "'proxy.internal' is not an IP address"),
    ("1.2.3", "'1.2.3' is not an IP address"),
    ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: write '10.0.0.0/8'"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR network"),
    ("fd00::/129", "'fd00::/129' is not a CIDR network"),
    ("unix:/run/app.sock", "'unix:/run/app.sock' is not a CIDR network"),
]


@pytest.mark.parametrize(("allow", "message"), BAD_ENTRIES)
def test_a_bad_entry_is_a_config_error_that_names_it(allow: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^forwarded_allow_ips entry ") as caught:
        TrustedProxies.parse(allow)
    assert message in str(caught.value)
    assert "'unix' or '*'" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_value_that_is_not_a_str_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"forwarded_allow_ips must be a str, not \['\*'\]"):
        TrustedProxies.parse(["*"])  # type: ignore[arg-type]


# -- resolution -------------------------------------------------------------------------------


class Case(NamedTuple):
    headers: Headers
    client: Address | None
    scheme: str = "http"
    root_path: str = ""
    note: str | None = None  # a part of the note, or None for none
    allow: str = DEFAULT_FORWARDED_ALLOW_IPS
    peer: Address | None = LOCAL
    is_unix: bool = False
    connection_scheme: str = "http"
    configured_root: str = ""


def xff(*values: str) -> Headers:
    return [(b"x-forwarded-for", value.encode("latin-1")) for value in values]


def fwd(*values: str) -> Headers:
    return [(b"forwarded", value.encode("latin-1")) for value in values]


def proto(value: str) -> Headers:
    return [(b"x-forwarded-proto", value.encode("latin-1"))]


def prefix(value: str) -> Headers:
    return [(b"x-forwarded-prefix", value.encode("latin-1"))]


UNTRUSTED: Address = ("198.51.100.7", 41000)

CASES = {
    # X-Forwarded-For, walked from the right
    "xff: one address, port 0": Case(xff("203.0.113.7"), ("203.0.113.7", 0)),
    "xff: spoofed prefix from the client is skipped": Case(
        xff("6.6.6.6, 203.0.113.7"), ("203.0.113.7", 0)
    ),
    "xff: trusted chain skipped, first untrusted wins": Case(
        xff("6.6.6.6, 203.0.113.7, 10.0.0.2, 10.9.9.9"), ("203.0.113.7", 0), allow=CHAIN
    ),
    "xff: a trusted plain address hop is skipped": Case(
        xff("6.6.6.6, 203.0.113.7, 127.0.0.1"), ("203.0.113.7", 0)
    ),
    "xff: an ipv4-mapped trusted hop is skipped": Case(
        xff("203.0.113.7, ::ffff:127.0.0.1"), ("203.0.113.7", 0)
    ),
    "xff: a trusted ipv6 hop is skipped": Case(xff("2001:db8::7, ::1"), ("2001:db8::7", 0)),
    "xff: all trusted gives the left-most": Case(
        xff("10.0.0.3, 10.0.0.2"), ("10.0.0.3", 0), allow=CHAIN
    ),
    "xff: '*' trusts every hop, the left-most": Case(
        xff("6.6.6.6, 203.0.113.7"), ("6.6.6.6", 0), allow="*", peer=UNTRUSTED
    ),
    "xff: several lines are joined in order": Case(
        xff("203.0.113.7", "10.0.0.2"), ("203.0.113.7", 0), allow=CHAIN
    ),
    "xff: several lines, the spoofed first line is skipped": Case(
        xff("6.6.6.6", "203.0.113.7"), ("203.0.113.7", 0)
    ),
    "xff: ipv6, canonical form": Case(xff("2001:DB8:0::1"), ("2001:db8::1", 0)),
    "xff: bracketed ipv6 with a port": Case(xff("[2001:db8::1]:4711"), ("2001:db8::1", 4711)),
    "xff: ipv4 with a port": Case(xff("203.0.113.7:5678"), ("203.0.113.7", 5678)),
    "xff: from a trusted ipv6 peer": Case(
        xff("203.0.113.7"), ("203.0.113.7", 0), peer=("::1", 40000)
    ),
    "xff: from a unix socket with 'unix'": Case(
        xff("203.0.113.7"), ("203.0.113.7", 0), allow="unix", peer=None, is_unix=True
    ),
    "xff: garbage is ignored with a note": Case(
        xff("not-an-address"), LOCAL, note="malformed X-Forwarded-For header ignored"
    ),
    "xff: an empty value is ignored": Case(
        xff(""), LOCAL, note="malformed X-Forwarded-For header ignored"
    ),
    "xff: an empty entry is malformed": Case(
        xff("203.0.113.7,,10.0.0.2"), LOCAL, note="malformed X-Forwarded-For", allow=CHAIN
    ),
    "xff: a port out of range": Case(
        xff("203.0.113.7:65536"), LOCAL, note="malformed X-Forwarded-For"
    ),
    "xff: an empty port": Case(xff("203.0.113.7:"), LOCAL, note="malformed X-Forwarded-For"),
    "xff: an empty port after brackets": Case(xff("[::2]:"), LOCAL, note="malformed"),
    "xff: brackets around ipv4": Case(xff("[203.0.113.7]"), LOCAL, note="malformed"),
    "xff: 'unknown' is not an address": Case(xff("unknown"), LOCAL, note="malformed"),
    # untrusted peers: every header ignored
    "untrusted: xff ignored": Case(
        xff("203.0.113.7"), UNTRUSTED, peer=UNTRUSTED, note="198.51.100.7:41000"
    ),
    "untrusted: everything ignored": Case(
        [*fwd("for=1.1.1.1;proto=https"), *xff("1.1.1.1"), *proto("https"), *prefix("/x")],
        UNTRUSTED,
        peer=UNTRUSTED,
        configured_root="/app",
        root_path="/app",
        note="forwarded, x-forwarded-for, x-forwarded-prefix, x-forwarded-proto from "
        "198.51.100.7:41000 ignored: the peer is not in forwarded_allow_ips",
    ),
    "untrusted: ipv6 peer named in brackets": Case(
        xff("203.0.113.7"), ("2001:db8::9", 1), peer=("2001:db8::9", 1), note="[2001:db8::9]:1"
    ),
    "untrusted: a unix socket without 'unix'": Case(
        xff("203.0.113.7"), None, peer=None, is_unix=True, note="from a Unix socket ignored"
    ),
    "untrusted: an unknown peer": Case(
        xff("203.0.113.7"), None, peer=None, note="from an unknown peer ignored"
    ),
    "untrusted: a network that does not hold the peer": Case(
        xff("203.0.113.7"), ("11.0.0.1", 9), peer=("11.0.0.1", 9), allow=CHAIN, note="ignored"
    ),
    # X-Forwarded-Proto
    "proto: https": Case(proto("https"), LOCAL, scheme="https"),
    "proto: any case, blanks": Case(proto(" HTTPS "), LOCAL, scheme="https"),
    "proto: http over a tls connection": Case(
        proto("http"), LOCAL, scheme="http", connection_scheme="https"
    ),
    "proto: https on a websocket is wss": Case(
        proto("https"), LOCAL, scheme="wss", connection_scheme="ws"
    ),
    "proto: http on a websocket is ws": Case(
        proto("http"), LOCAL, scheme="ws", connection_scheme="wss"
    ),
    "proto: wss on http is https": Case(proto("wss"), LOCAL, scheme="https"),
    "proto: other values ignored": Case(
        proto("ftp"), LOCAL, note="forwarded proto ignored: 'ftp' is not http or https"
    ),
    "proto: list, right-most when no hop skipped": Case(proto("https, http"), LOCAL),
    "proto: list aligned with the skipped hops": Case(
        [*xff("203.0.113.7, 10.0.0.2"), *proto("https, http")],
        ("203.0.113.7", 0),
        scheme="https",
        allow=CHAIN,
    ),
    "proto: shorter list gives its left-most": Case(
        [*xff("203.0.113.7, 10.0.0.3, 10.0.0.2"), *proto("https, http")],
        ("203.0.113.7", 0),
        scheme="https",
        allow=CHAIN,
    ),
    "proto: with xff": Case(
        [*xff("203.0.113.7"), *proto("https")], ("203.0.113.7", 0), scheme="https"
    ),
    # X-Forwarded-Prefix
    "prefix: gives root_path": Case(prefix("/api"), LOCAL, root_path="/api"),
    "prefix: replaces the configured root_path": Case(
        prefix("/api"), LOCAL, root_path="/api", configured_root="/static"
    ),
    "prefix: trailing slash dropped": Case(prefix("/api/"), LOCAL, root_path="/api"),
    "prefix: '/' is the empty root_path": Case(
        prefix("/"), LOCAL, root_path="", configured_root="/static"
    ),
    "prefix: must start with /": Case(
        prefix("api"), LOCAL, root_path="/static", configured_root="/static", note="Prefix"
    ),
    "prefix: no blanks inside": Case(prefix("/a b"), LOCAL, note="malformed X-Forwarded-Prefix"),
    "prefix: no control characters": Case(prefix("/a\x7f"), LOCAL, note="X-Forwarded-Prefix"),
    "prefix: applies beside Forwarded": Case(
        [*fwd("for=203.0.113.7"), *prefix("/api")], ("203.0.113.7", 0), root_path="/api"
    ),
    # Forwarded (RFC 7239)
    "fwd: for, proto, by": Case(
        fwd("for=192.0.2.60;proto=https;by=203.0.113.43"), ("192.0.2.60", 0), scheme="https"
    ),
    "fwd: quoted ipv6 with a port": Case(
        fwd('for="[2001:db8:cafe::17]:4711"'), ("2001:db8:cafe::17", 4711)
    ),
    "fwd: quoted ipv6 without a port": Case(fwd('For="[2001:DB8::1]"'), ("2001:db8::1", 0)),
    "fwd: quoted ipv6 without brackets (lenient)": Case(
        fwd('for="2001:db8::1"'), ("2001:db8::1", 0)
    ),
    "fwd: quoted ipv4 with a port": Case(fwd('for="192.0.2.43:47011"'), ("192.0.2.43", 47011)),
    "fwd: obfuscated port is 0": Case(fwd('for="192.0.2.43:_p1"'), ("192.0.2.43", 0)),
    "fwd: for=unknown is no client": Case(fwd("for=unknown;proto=https"), None, scheme="https"),
    "fwd: obfuscated identifier is no client": Case(fwd("for=_hidden, for=_SEVKISEK"), None),
    "fwd: quoted-pair in a value": Case(fwd('for="\\_hidden"'), None),
    "fwd: spoofed element from the client is skipped": Case(
        fwd("for=6.6.6.6, for=203.0.113.7"), ("203.0.113.7", 0)
    ),
    "fwd: several lines, proto from the chosen element": Case(
        fwd("for=6.6.6.6;proto=http", "for=203.0.113.7;proto=https", "for=10.0.0.2;proto=http"),
        ("203.0.113.7", 0),
        scheme="https",
        allow=CHAIN,
    ),
    "fwd: all trusted gives the left-most": Case(
        fwd("for=10.0.0.3, for=10.0.0.2"), ("10.0.0.3", 0), allow=CHAIN
    ),
    "fwd: '*' gives the left-most, even past an unknown": Case(
        fwd("for=6.6.6.6, for=unknown, for=203.0.113.7"), ("6.6.6.6", 0), allow="*"
    ),
    "fwd: an unknown hop stops the walk": Case(
        fwd("for=6.6.6.6, for=_lb, for=10.0.0.2"), None, allow=CHAIN
    ),
    "fwd: no for= keeps the connection's client": Case(
        fwd("proto=https;host=example.com"), LOCAL, scheme="https"
    ),
    "fwd: beats x-forwarded-for and -proto": Case(
        [*xff("198.51.100.1"), *fwd("for=192.0.2.1;proto=https"), *proto("http")],
        ("192.0.2.1", 0),
        scheme="https",
    ),
    "fwd: beats x-forwarded-proto even without proto=": Case(
        [*fwd("for=192.0.2.1"), *proto("https")], ("192.0.2.1", 0)
    ),
    "fwd: blanks and empty elements": Case(
        fwd(" , for=192.0.2.1 ; proto=https ,, "), ("192.0.2.1", 0), scheme="https"
    ),
    "fwd: websocket scheme": Case(
        fwd("for=192.0.2.1;proto=https"), ("192.0.2.1", 0), scheme="wss", connection_scheme="ws"
    ),
    "fwd: bad proto ignored, client kept": Case(
        fwd("for=192.0.2.1;proto=gopher"), ("192.0.2.1", 0), note="'gopher' is not http"
    ),
    "fwd: from a unix socket with 'unix'": Case(
        fwd('for="[::1]:80"'), ("::1", 80), allow="unix", peer=None, is_unix=True
    ),
    "fwd: empty header falls back to xff": Case(
        [*fwd(""), *xff("203.0.113.7")], ("203.0.113.7", 0)
    ),
    "fwd: unquoted port is malformed, xff used": Case(
        [*fwd("for=192.0.2.1:80"), *xff("203.0.113.7"), *proto("https")],
        ("203.0.113.7", 0),
        scheme="https",
        note="malformed Forwarded header ignored",
    ),
    "fwd: unclosed bracket": Case(fwd('for="[2001:db8::1"'), LOCAL, note="malformed for="),
    "fwd: bad address": Case(fwd("for=999.1.1.1"), LOCAL, note="malformed for= ignored"),
    "fwd: brackets around ipv4": Case(fwd('for="[192.0.2.1]"'), LOCAL, note="malformed for="),
    "fwd: junk after brackets": Case(fwd('for="[::1]x"'), LOCAL, note="malformed for="),
    "fwd: a repeated parameter": Case(
        fwd("for=192.0.2.1;for=192.0.2.2"), LOCAL, note="malformed Forwarded"
    ),
    "fwd: unterminated quote": Case(fwd('for="192.0.2.1'), LOCAL, note="malformed Forwarded"),
    "fwd: a bare word": Case(fwd("hello"), LOCAL, note="malformed Forwarded"),
    "fwd: junk after a quoted value": Case(
        fwd('for="192.0.2.1"x'), LOCAL, note="malformed Forwarded"
    ),
    "fwd: two notes joined": Case(
        [*fwd("for=x:1"), *xff("nope")], LOCAL, note="ignored: 'for=x:1'; malformed X-Forw"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_resolve(case: Case) -> None:
    result = resolve_forwarded(
        TrustedProxies.parse(case.allow),
        case.peer,
        case.is_unix,
        [(b"host", b"example.com"), *case.headers, (b"accept", b"*/*")],
        case.connection_scheme,
        case.configured_root,
    )
    assert result is not None
    client, scheme, root_path, note = result
    assert (client, scheme, root_path) == (case.client, case.scheme, case.root_path)
    if case.note is None:
        assert note is None
    else:
        assert note is not None
        assert case.note in note


@pytest.mark.parametrize("allow", [DEFAULT_FORWARDED_ALLOW_IPS, "*"])
def test_no_proxy_header_is_none(allow: str) -> None:
    headers = [(b"host", b"example.com"), (b"x-forwarded-host", b"a"), (b"x-real-ip", b"1.2.3.4")]
    assert resolve_forwarded(TrustedProxies.parse(allow), LOCAL, False, headers, "http", "") is None
    assert resolve_forwarded(TrustedProxies.parse(allow), LOCAL, False, [], "http", "") is None


def test_header_names_are_matched_lower_case_as_in_the_scope() -> None:
    headers = [(b"X-Forwarded-For", b"203.0.113.7")]  # the scope never holds this
    trusted = TrustedProxies.parse(DEFAULT_FORWARDED_ALLOW_IPS)
    assert resolve_forwarded(trusted, LOCAL, False, headers, "http", "") is None


# -- never raises -----------------------------------------------------------------------------

NAMES = st.sampled_from(
    [b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-prefix", b"host"]
)
FORWARDED_ALPHABET = 'for=proto=unknown_"[]:;, \t\\0123456789abcdef.xhtps\x00\xff'
VALUES = st.one_of(
    st.binary(max_size=80),
    st.text(FORWARDED_ALPHABET, max_size=60).map(lambda text: text.encode("latin-1")),
    st.lists(
        st.one_of(st.ip_addresses().map(str), st.sampled_from(["unknown", "_x", "", " "])),
        max_size=4,
    ).map(lambda hops: ", ".join(hops).encode("latin-1")),
)
ALLOWS = st.sampled_from([DEFAULT_FORWARDED_ALLOW_IPS, "*", "unix,10.0.0.0/8,::/0", ""])


@given(
    allow=ALLOWS,
    headers=st.lists(st.tuples(NAMES, VALUES), max_size=6),
    is_unix=st.booleans(),
    connection_scheme=st.sampled_from(["http", "https", "ws", "wss"]),
)
def test_never_raises(allow: str, headers: Headers, is_unix: bool, connection_scheme: str) -> None:
    peer = None if is_unix else LOCAL
    result = resolve_forwarded(
        TrustedProxies.parse(allow), peer, is_unix, headers, connection_scheme, "/root"
    )
    if result is None:
        assert all(name == b"host" for name, _ in headers)
        return
    assert isinstance(result, Forwarded)
    if result.client is not None:
        host, port = result.client
        assert isinstance(host, str)
        assert 0 <= port <= 65535
    websocket = connection_scheme.startswith("ws")
    assert result.scheme in (("ws", "wss") if websocket else ("http", "https"))
    assert result.root_path == "/root" or result.root_path.startswith("/") or not result.root_path
    assert result.note is None or isinstance(result.note, str)
