"""Sans-IO reading of a PROXY protocol header, version 1 or 2 (HAProxy's
doc/proxy-protocol.txt, "The PROXY protocol, Versions 1 & 2").

A proxy in front of trio-asgi (HAProxy's ``send-proxy``/``send-proxy-v2``, a cloud TCP load
balancer) prefixes each connection with one header that names the original client and the
address it connected to. :class:`ProxyProtocolReader` is fed the connection's first bytes as
they arrive and returns None (need more), a :class:`ProxyHeader`, or raises
:exc:`ProxyProtocolError`; it never reads a socket and never waits. The caller owns the
deadline (the request-header timeout), the trust check (only ``forwarded_allow_ips`` peers
may send a header; spec section 1: the receiver "must not try to guess whether the protocol
header is present") and the close.

The rules it keeps, each refused with :exc:`ProxyProtocolError`:

- **The version is known from the first byte, the verdict as soon as a byte is wrong**
  (spec 2.2, "Identifying the protocol version"): ``\\r`` starts the 12-byte v2 signature,
  ``P`` starts ``"PROXY "``; anything else (an HTTP request, TLS, a scanner) is refused at
  the first byte that cannot begin or continue either, without waiting for 8 or 16 bytes.
- **v1 (spec 2.1) is one CRLF-terminated line of at most 107 bytes**:
  ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` with single spaces, an address of the
  family named, ports 0-65535 without leading zeros, IPv4 octets without leading zeros, no
  IPv6 zone index; a bare LF is refused, and 107 bytes without LF are refused at once.
  ``PROXY UNKNOWN`` may be followed by anything up to the CRLF, which is ignored: the
  socket's addresses stand.
- **v2 (spec 2.2)**: version nibble 2; command LOCAL (0) or PROXY (1), nothing else; for
  PROXY, family UNSPEC/INET/INET6/UNIX and transport UNSPEC/STREAM/DGRAM, nothing else; an
  address length field of at least the family's addresses (12, 36 or 216 bytes); the whole
  header (16 + length) at most ``max_size`` bytes, refused as soon as the length is read.
  TLVs after the addresses must each fit in the header and are returned; only
  PP2_TYPE_SSL is interpreted (PP2_TYPE_CRC32C is not checked: the spec asks that of
  receivers supporting it).
- **PP2_TYPE_SSL (0x20, spec 2.2.5) says whether the client spoke TLS to the proxy**: its
  value is the ``client`` bit field (1 byte), ``verify`` (4 bytes, big-endian; 0 when a
  client certificate was sent and verified) and sub-TLVs (PP2_SUBTYPE_SSL_VERSION 0x21,
  PP2_SUBTYPE_SSL_CN 0x22, ...), which must fit in it as TLVs fit in the header; a value
  under 5 bytes is refused. :attr:`ProxyHeader.tls` is True when it is present with
  PP2_CLIENT_SSL (0x01) set; :attr:`ProxyHeader.ssl` holds the parsed TLV (the first, if
  there are several).
- **What the socket's addresses stand for is said by** :attr:`ProxyHeader.family`:
  ``UNSPEC`` for a v2 LOCAL command (a health check: spec 2.2 "must use the real
  connection endpoints"), v1 ``UNKNOWN``, a v2 UNSPEC family or transport, and v2 DGRAM
  (which a stream server does not support and so, by spec 2.2, treats as UNSPEC). A v2
  UNIX header gives socket paths, not ``(host, port)`` addresses.
- **The bytes after the header are the application's**: :attr:`ProxyHeader.rest` holds
  whatever arrived with the header's end, untouched.
- **EOF** (``feed(b"")``, h11's convention) before the header is complete is an error
  that says how far the header got.

Why not the ``proxy-protocol`` package (PyPI 0.11.3, April 2024, "Alpha"): its
``unpack()`` parses a buffer that must hold exactly the header, so a caller must find the
header's end itself (most of the parsing) -- given the bytes after a v2 header it takes
them for TLVs, given them after a v1 line it refuses the line; a v1 line without LF asks for
more for ever (no 107-byte bound); a v2 length shorter than the addresses raises
``struct.error`` and unassigned families are accepted as "unknown"; its v1 parser takes
ports ``0080``, ``+80`` and ``8_0`` and IPv6 zone indexes. The spec is short; this is too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from .._types import Address

__all__ = [
    "MAX_HEADER_SIZE",
    "PP2_CLIENT_SSL",
    "PP2_TYPE_SSL",
    "V1_MAX_SIZE",
    "V2_SIGNATURE",
    "Family",
    "ProxyHeader",
    "ProxyProtocolError",
    "ProxyProtocolReader",
    "ProxySSL",
]

V1_MAX_SIZE: Final = 107  # bytes: the longest v1 line, CRLF included (spec 2.1)
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"  # 12 bytes (spec 2.2)
V2_FIXED_SIZE: Final = 16  # bytes: signature, version/command, family/transport, length
MAX_HEADER_SIZE: Final = V2_FIXED_SIZE + 0xFFFF  # bytes: the most a v2 length field can say
_V1_PREFIX: Final = b"PROXY "
PP2_TYPE_SSL: Final = 0x20  # the TLS the client spoke to the proxy (spec 2.2.5)
PP2_SUBTYPE_SSL_VERSION: Final = 0x21  # its sub-TLV: the TLS version, US-ASCII
PP2_CLIENT_SSL: Final = 0x01  # the client's bit: it connected over SSL/TLS
_SSL_FIXED_SIZE: Final = 5  # bytes: client (1), verify (4)


class ProxyProtocolError(ValueError):
    """The connection's first bytes are not a valid PROXY protocol header (or it closed
    before one was complete). ``str(exc)`` is a short reason, for one debug log line."""


class Family(Enum):
    """The address family a header reports (v2's high nibble of byte 14; v1's TCP4/TCP6)."""

    UNSPEC = 0  # no addresses: the socket's own stand (LOCAL, UNKNOWN, UNSPEC, DGRAM)
    INET = 1
    INET6 = 2
    UNIX = 3


@dataclass(frozen=True, slots=True)
class ProxySSL:
    """A v2 PP2_TYPE_SSL TLV: how the client reached the proxy (spec 2.2.5).

    Attributes:
        client (int): the bit field: PP2_CLIENT_SSL (0x01) the client connected over
            SSL/TLS, PP2_CLIENT_CERT_CONN (0x02) it sent a certificate on this connection,
            PP2_CLIENT_CERT_SESS (0x04) at least once in this TLS session.
        verify (int): 0 if the client sent a certificate and it was verified, else not 0.
        tlvs (tuple[tuple[int, bytes], ...]): the sub-TLVs ``(type, value)``, in order.
    """

    client: int
    verify: int
    tlvs: tuple[tuple[int, bytes], ...] = ()

    @property
    def version(self) -> str | None:
        """PP2_SUBTYPE_SSL_VERSION's text (``"TLSv1.3"``), or None if absent."""
        for kind, value in self.tlvs:
            if kind == PP2_SUBTYPE_SSL_VERSION:
                return value.decode("ascii", "replace")
        return None


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete PROXY protocol header.

    Attributes:
        version (int): 1 or 2.
        family (Family): ``UNSPEC`` when the socket's own addresses stand (see the module
            docstring); ``INET``/``INET6`` with ``source`` and ``destination`` set;
            ``UNIX`` with ``source_path`` and ``destination_path`` set.
        source (Address | None): the original client's ``(host, port)``; host in
            :mod:`ipaddress`'s canonical text form.
        destination (Address | None): the ``(host, port)`` the client connected to.
        source_path (str | None): ``UNIX``: the client's socket path (None if unnamed).
        destination_path (str | None): ``UNIX``: the proxy's listening socket path.
        tlvs (tuple[tuple[int, bytes], ...]): v2 ``(type, value)`` pairs, in order.
        ssl (ProxySSL | None): the v2 PP2_TYPE_SSL TLV, parsed, or None without one.
        rest (bytes): the bytes after the header, which belong to the application protocol.
    """

    version: int
    family: Family
    source: Address | None
    destination: Address | None
    rest: bytes
    source_path: str | None = None
    destination_path: str | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    ssl: ProxySSL | None = None

    @property
    def tls(self) -> bool:
        """The client connected to the proxy over SSL/TLS: a PP2_TYPE_SSL TLV with
        PP2_CLIENT_SSL set (spec 2.2.5). False for v1 and for v2 without it."""
        return self.ssl is not None and bool(self.ssl.client & PP2_CLIENT_SSL)


class ProxyProtocolReader:
    """Reads one PROXY protocol header, v1 or v2, from bytes fed as they arrive.

    Args:
        max_size: the longest header accepted, in bytes (16 to ``MAX_HEADER_SIZE``); a v2
            header whose length field says more is refused once the field is read. A v1
            line is also bounded by ``V1_MAX_SIZE``.

    Raises:
        ValueError: ``max_size`` is out of range.
    """

    __slots__ = ("_buffer", "_spent", "max_size")

    def __init__(self, *, max_size: int = MAX_HEADER_SIZE) -> None:
        if not V2_FIXED_SIZE <= max_size <= MAX_HEADER_SIZE:
            raise ValueError(
                f"max_size must be {V2_FIXED_SIZE} to {MAX_HEADER_SIZE} bytes, not {max_size!r}"
            )
        self.max_size = max_size
        self._buffer = bytearray()
        self._spent = False

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Add ``data`` (the next bytes from the peer; ``b""`` at EOF) and parse.

        Returns:
            The header once it is complete (the reader is then spent), or None if more
            bytes are needed.

        Raises:
            ProxyProtocolError: the bytes are not a valid header, or EOF came first; the
                reader is then spent.
            RuntimeError: the reader is spent (a header or an error was returned already).
        """
        if self._spent:
            raise RuntimeError("this ProxyProtocolReader has returned its header or error")
        self._spent = True
        if not data:
            if self._buffer:
                raise ProxyProtocolError(
                    f"connection closed {len(self._buffer)} bytes into the PROXY header"
                )
            raise ProxyProtocolError("connection closed before a PROXY header")
        self._buffer += data
        header = self._parse_v2() if self._buffer[0] == V2_SIGNATURE[0] else self._parse_v1()
        self._spent = header is not None
        return header

    def _parse_v1(self) -> ProxyHeader | None:
        buffer = self._buffer
        if not buffer.startswith(_V1_PREFIX[: len(buffer)]):
            raise ProxyProtocolError("not a PROXY protocol header")
        limit = min(V1_MAX_SIZE, self.max_size)
        end = buffer.find(b"\n", 0, limit)
        if end < 0:
            if len(buffer) >= limit:
                raise ProxyProtocolError(f"v1: no CRLF in the first {limit} bytes")
            return None
        if buffer[end - 1] != 0x0D:  # end >= len(_V1_PREFIX) here: the prefix matched
            raise ProxyProtocolError("v1: LF without CR")
        rest = bytes(buffer[end + 1 :])
        return _v1_header(bytes(buffer[len(_V1_PREFIX) : end - 1]), rest)

    def _parse_v2(self) -> ProxyHeader | None:
        buffer = self._buffer
        received = len(buffer)
        if not buffer.startswith(V2_SIGNATURE[:received]):
            raise ProxyProtocolError("not a PROXY protocol header")
        if received < 13:
            return None
        version, command = buffer[12] >> 4, buffer[12] & 0x0F
        if version != 2:
            raise ProxyProtocolError(f"v2: version {version} in the version/command byte")
        if command > 1:
            raise ProxyProtocolError(f"v2: unknown command {command:#x}")
        if received < V2_FIXED_SIZE:
            return None
        family, transport = buffer[13] >> 4, buffer[13] & 0x0F
        length = int.from_bytes(buffer[14:16], "big")
        size = V2_FIXED_SIZE + length
        if size > self.max_size:
            raise ProxyProtocolError(f"v2: header of {size} bytes, over {self.max_size}")
        proxied = command == 1
        if proxied:
            if family > 3 or transport > 2:
                raise ProxyProtocolError(f"v2: unknown family/transport {buffer[13]:#04x}")
            needed = _V2_ADDRESS_SIZES[family] if transport else 0
            if length < needed:
                raise ProxyProtocolError(
                    f"v2: length {length} shorter than the {needed} bytes of addresses"
                )
        if received < size:
            return None
        block = bytes(buffer[V2_FIXED_SIZE:size])
        rest = bytes(buffer[size:])
        if not proxied or family == 0 or transport != 1:  # LOCAL, UNSPEC, DGRAM: ignored
            return ProxyHeader(2, Family.UNSPEC, None, None, rest)
        return _v2_header(Family(family), block, rest)


#: v2 address block sizes by family, in bytes (spec 2.2: 2*4 + 2*2, 2*16 + 2*2, 2*108).
_V2_ADDRESS_SIZES: Final = (0, 12, 36, 216)
_UNIX_PATH_SIZE: Final = 108  # bytes: sun_path
_PORT: Final = re.compile(rb"0|[1-9][0-9]{0,4}")
_V1_PROTOCOLS: Final = {b"TCP4": 4, b"TCP6": 6}  # the IP version of each
#: The characters of an address; :func:`ipaddress.ip_address` checks the rest, leading zeros
#: in IPv4 octets included (refused since Python 3.9.5, bpo-36384). No zone ("%eth0").
_ADDRESS: Final = re.compile(rb"[0-9A-Fa-f:.]{2,45}")


def _v1_header(line: bytes, rest: bytes) -> ProxyHeader:
    """The header of the v1 ``line`` (after ``"PROXY "``, before CRLF), spec 2.1."""
    fields = line.split(b" ")
    protocol = fields[0]
    if protocol == b"UNKNOWN":  # whatever follows it before the CRLF is ignored
        return ProxyHeader(1, Family.UNSPEC, None, None, rest)
    version = _V1_PROTOCOLS.get(protocol)
    if version is None:
        raise ProxyProtocolError(f"v1: unknown protocol {protocol[:8]!r}")
    if len(fields) != 5:
        raise ProxyProtocolError("v1: not four fields separated by single spaces")
    hosts = []
    for text in fields[1:3]:
        host = None
        if _ADDRESS.fullmatch(text) is not None:
            try:
                host = ipaddress.ip_address(text.decode("ascii"))
            except ValueError:
                host = None
        if host is None or host.version != version:
            raise ProxyProtocolError(f"v1: bad {protocol.decode()} address {text[:45]!r}")
        hosts.append(str(host))
    ports = []
    for text in fields[3:5]:
        if _PORT.fullmatch(text) is None or int(text) > 0xFFFF:
            raise ProxyProtocolError(f"v1: bad port {text[:8]!r}")
        ports.append(int(text))
    family = Family.INET if version == 4 else Family.INET6
    return ProxyHeader(1, family, (hosts[0], ports[0]), (hosts[1], ports[1]), rest)


def _v2_header(family: Family, block: bytes, rest: bytes) -> ProxyHeader:
    """The header of a v2 PROXY command over STREAM: ``block`` is the address block and the
    TLVs (spec 2.2 and 2.2.x)."""
    size = _V2_ADDRESS_SIZES[family.value]
    tlvs = _v2_tlvs(block, size, "TLV")
    ssl = _v2_ssl(tlvs)
    if family is Family.UNIX:
        return ProxyHeader(
            2,
            family,
            None,
            None,
            rest,
            _unix_path(block[:_UNIX_PATH_SIZE]),
            _unix_path(block[_UNIX_PATH_SIZE:size]),
            tlvs,
            ssl,
        )
    width = 4 if family is Family.INET else 16
    source = str(ipaddress.ip_address(block[:width]))
    destination = str(ipaddress.ip_address(block[width : 2 * width]))
    ports = 2 * width
    source_port = int.from_bytes(block[ports : ports + 2], "big")
    destination_port = int.from_bytes(block[ports + 2 : ports + 4], "big")
    return ProxyHeader(
        2,
        family,
        (source, source_port),
        (destination, destination_port),
        rest,
        tlvs=tlvs,
        ssl=ssl,
    )


def _v2_tlvs(block: bytes, start: int, what: str) -> tuple[tuple[int, bytes], ...]:
    """The ``(type, value)`` TLVs in ``block[start:]``; each must fit in the block.
    ``what`` names them in errors: ``"TLV"``, or ``"PP2_TYPE_SSL sub-TLV"``."""
    tlvs = []
    end = len(block)
    while start < end:
        if end - start < 3:
            raise ProxyProtocolError(f"v2: truncated {what}")
        value_end = start + 3 + int.from_bytes(block[start + 1 : start + 3], "big")
        if value_end > end:
            container = "the header" if what == "TLV" else "PP2_TYPE_SSL"
            raise ProxyProtocolError(f"v2: {what} {block[start]:#04x} overruns {container}")
        tlvs.append((block[start], block[start + 3 : value_end]))
        start = value_end
    return tuple(tlvs)


def _v2_ssl(tlvs: tuple[tuple[int, bytes], ...]) -> ProxySSL | None:
    """The first PP2_TYPE_SSL TLV of ``tlvs``, parsed (spec 2.2.5), or None."""
    for kind, value in tlvs:
        if kind == PP2_TYPE_SSL:
            if len(value) < _SSL_FIXED_SIZE:
                raise ProxyProtocolError(
                    f"v2: PP2_TYPE_SSL of {len(value)} bytes, under {_SSL_FIXED_SIZE}"
                )
            subs = _v2_tlvs(value, _SSL_FIXED_SIZE, "PP2_TYPE_SSL sub-TLV")
            return ProxySSL(value[0], int.from_bytes(value[1:5], "big"), subs)
    return None


def _unix_path(field: bytes) -> str | None:
    """A ``sun_path`` field as text (up to its first NUL), None if empty (an unnamed or
    abstract socket); bytes that are not UTF-8 are kept as backslash escapes."""
    path = field.split(b"\x00", 1)[0]
    return path.decode("utf-8", "backslashreplace") if path else None
