"""The proxy-header trust model: who may tell us the client, scheme and root path, and how
their headers are read. Pure: values in, values out, no I/O, no trio.

Two parts:

- :class:`~trio_asgi._trust.TrustedProxies` is ``Config.forwarded_allow_ips`` parsed once per
  server (it lives in ``_trust``, layer 0, so ``Config`` can validate with it; re-exported
  here): IPv4 and IPv6 addresses, CIDR networks, ``unix`` (peers on a Unix socket) and ``*``
  (everyone). :meth:`TrustedProxies.trusts` answers per request, a set lookup in the common
  case.
- :func:`resolve_forwarded` reads one request's proxy headers and says what its scope should
  carry instead of the connection's own values.

The rules kept (issue 12, "Proxies"):

1. Nothing is read unless the immediate peer is trusted. From an untrusted peer every proxy
   header is ignored (the caller gets a note naming the peer, for one debug line).
2. The RFC 7239 ``Forwarded`` header (section 4: elements joined by ``,``, pairs by ``;``,
   values a token or a quoted-string; several header lines are one list, in order) takes
   precedence over ``X-Forwarded-For`` and ``X-Forwarded-Proto`` when present and well
   formed. ``X-Forwarded-Prefix`` has no ``Forwarded`` counterpart and applies either way.
3. The client is found by walking the list (``Forwarded`` elements, or ``X-Forwarded-For``
   entries, several lines joined with ``,`` in order) from the right, skipping entries that
   are trusted proxies: the first untrusted entry is the client; never simply the left-most,
   which anyone can write. If every entry is trusted (a chain of trusted proxies), the
   left-most is the client; with ``*`` every entry is trusted, unknown ones too, so the
   left-most is always the client. The host is given in canonical form (``2001:db8::1``).
4. ``for=`` (RFC 7239 section 6): an IPv4 address, a bracketed IPv6 address (quoted, since
   ``[``, ``]`` and ``:`` are not token characters, so an unquoted ``for=1.2.3.4:80`` is
   malformed; a quoted IPv6 address without brackets is accepted), each with an optional
   ``:port``; ``unknown`` or an obfuscated identifier (``_hidden``, section 6.3) make
   ``client`` None (the proxy says the client is not known, so the scope does not name the
   proxy instead); an element with no ``for=`` leaves ``client`` as the connection's.
5. The client port is the one the header gives (``Forwarded``'s ``node-port``, or an
   ``X-Forwarded-For`` entry written ``1.2.3.4:5678`` / ``[2001:db8::1]:5678`` as some load
   balancers send), else ``0``: uvicorn's convention for an address without a port (its
   ``ProxyHeadersMiddleware`` always sets 0), so apps ported from it see the same value. An
   obfuscated port (``_abc``) is also 0.
6. The scheme comes from the chosen ``Forwarded`` element's ``proto=``, else from
   ``X-Forwarded-Proto``. ``http``, ``https``, ``ws`` and ``wss`` (any case) are accepted and
   mapped onto the connection's kind: ``https``/``wss`` give ``wss`` on a WebSocket
   connection (scheme ``ws``/``wss``) and ``https`` on an HTTP one. Other values are ignored.
7. ``X-Forwarded-Proto`` and ``X-Forwarded-Prefix`` may be lists too (proxies that append):
   the entry aligned with the chosen client hop is used, counted from the right (the
   right-most when no hop was skipped), or the left-most if the list is shorter. A single
   value is used as it is.
8. ``X-Forwarded-Prefix`` replaces ``root_path`` (the proxy knows where it mounted the app
   better than the static setting): it must start with ``/`` and hold no whitespace or
   control characters; trailing slashes are dropped (``/`` gives ``""``).
9. Malformed values never raise: the header is ignored (a malformed ``Forwarded`` falls back
   to the ``X-Forwarded-*`` headers) and the result carries a note for one debug line.

A trusted proxy must set or remove every one of these headers that it does not want a
client to write: one that only appends to ``X-Forwarded-For`` passes a client's own
``Forwarded`` header through, and that one takes precedence (docs/deployment.md says how).

Speed: :func:`resolve_forwarded` runs for every request when proxy headers are on. With no
proxy header present it is one pass over the header names with a set lookup each, and
returns None without allocating; the trust check runs only once a proxy header is seen.
Canonical IPv4 text is recognised by one regular expression, never parsed by
:mod:`ipaddress`; other address texts are parsed once and remembered
(:data:`PARSE_CACHE_SIZE` of them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from .._trust import DEFAULT_FORWARDED_ALLOW_IPS, IPV4, PARSE_CACHE_SIZE, TrustedProxies, parse_ip
from .._types import Address

__all__ = [
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "PARSE_CACHE_SIZE",
    "Forwarded",
    "TrustedProxies",
    "resolve_forwarded",
]

_FORWARDED: Final = b"forwarded"
_X_FOR: Final = b"x-forwarded-for"
_X_PROTO: Final = b"x-forwarded-proto"
_X_PREFIX: Final = b"x-forwarded-prefix"
_NAMES: Final = frozenset({_FORWARDED, _X_FOR, _X_PROTO, _X_PREFIX})

#: The scheme a proxy reported, by the connection's kind: (HTTP scheme, WebSocket scheme).
_SCHEMES: Final = {
    "http": ("http", "ws"),
    "ws": ("http", "ws"),
    "https": ("https", "wss"),
    "wss": ("https", "wss"),
}
_WEBSOCKET_SCHEMES: Final = frozenset({"ws", "wss"})

# RFC 7239 section 4 (with RFC 9110 section 5.6.2's token and 5.6.4's quoted-string).
_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED: Final = r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
_PAIR: Final = re.compile(rf"[ \t]*({_TOKEN})=(?:({_TOKEN})|{_QUOTED})[ \t]*")
_QUOTED_PAIR: Final = re.compile(r"\\(.)")
# RFC 7239 section 6: node = nodename [ ":" node-port ]
_OBFUSCATED: Final = re.compile(r"_[0-9A-Za-z._-]+")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_BAD_PREFIX_CHAR: Final = re.compile(r"[\x00-\x20\x7f]")


class Forwarded(NamedTuple):
    """What a request's scope carries once its proxy headers are read.

    Attributes:
        client: ``scope["client"]``: ``(host, port)``, or None when not known.
        scheme: ``scope["scheme"]``: ``http``/``https``, or ``ws``/``wss`` on a WebSocket.
        root_path: ``scope["root_path"]``.
        note: why a header was ignored (an untrusted peer, a malformed value), for one debug
            line, or None.
    """

    client: Address | None
    scheme: str
    root_path: str
    note: str | None


def resolve_forwarded(
    trusted: TrustedProxies,
    peer: Address | None,
    is_unix: bool,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    root_path: str,
) -> Forwarded | None:
    """Read one request's proxy headers (the module docstring lists the rules).

    Args:
        trusted: the parsed ``forwarded_allow_ips``.
        peer: the connection's ``(host, port)``, or None (a Unix socket, or not known).
        is_unix: the connection is on a Unix socket.
        headers: the request's ``(name, value)`` pairs, names lower-cased (as in the scope).
        scheme: the connection's scheme, ``http``/``https`` or ``ws``/``wss``.
        root_path: the configured ``root_path``.

    Returns:
        None if the request has no proxy header (the scope keeps the connection's values),
        else the values its scope carries and, if something was ignored, a note. Never
        raises for any header bytes.
    """
    found: list[tuple[bytes, bytes]] | None = None
    for item in headers:
        if item[0] in _NAMES:
            if found is None:
                found = []
            found.append(item)
    if found is None:
        return None
    if not trusted.trusts(peer[0] if peer is not None else None, is_unix):
        who = "a Unix socket" if is_unix else _show_peer(peer)
        names = ", ".join(sorted({name.decode("ascii") for name, _ in found}))
        note = f"{names} from {who} ignored: the peer is not in forwarded_allow_ips"
        return Forwarded(peer, scheme, root_path, note)
    values: dict[bytes, list[bytes]] = {}
    for name, value in found:
        values.setdefault(name, []).append(value)
    return _Resolution(trusted, peer, scheme, root_path).run(values)


class _Resolution:
    """One trusted request's proxy headers being read; :meth:`run` gives the result."""

    __slots__ = ("client", "hops", "notes", "proto", "root_path", "scheme", "trusted")

    def __init__(
        self, trusted: TrustedProxies, peer: Address | None, scheme: str, root_path: str
    ) -> None:
        self.trusted = trusted
        self.client = peer
        self.scheme = scheme
        self.root_path = root_path
        self.proto: str | None = None  # the chosen Forwarded element's proto=, if any
        self.hops = 0  # trusted entries skipped, counted from the right
        self.notes: list[str] = []

    def run(self, values: dict[bytes, list[bytes]]) -> Forwarded:
        lines = values.get(_FORWARDED)
        if lines is None or not self._forwarded(_join(lines)):
            lines = values.get(_X_FOR)
            if lines is not None:
                self._x_forwarded_for(_join(lines))
            lines = values.get(_X_PROTO)
            if lines is not None:
                self.proto = self._aligned(_join(lines))
        if self.proto is not None:
            self._set_scheme(self.proto)
        lines = values.get(_X_PREFIX)
        if lines is not None:
            self._prefix(_join(lines))
        note = "; ".join(self.notes) if self.notes else None
        return Forwarded(self.client, self.scheme, self.root_path, note)

    def _forwarded(self, text: str) -> bool:
        """Apply the ``Forwarded`` header; False (with a note) if it is malformed."""
        elements = _parse_forwarded(text)
        if elements is None:
            self.notes.append(f"malformed Forwarded header ignored: {text!r}")
            return False
        if not elements:
            return False
        nodes: list[Address | str | None] = []
        for element in elements:
            node = element.get("for")
            parsed = None if node is None else _parse_node(node, forwarded=True)
            if node is not None and parsed is None:
                self.notes.append(f"Forwarded header with a malformed for= ignored: {node!r}")
                return False
            nodes.append(parsed)
        index = self._walk(nodes)
        chosen = nodes[index]
        if isinstance(chosen, tuple):
            self.client = chosen
        elif isinstance(chosen, str):
            self.client = None  # unknown, or an obfuscated identifier
        self.proto = elements[index].get("proto")
        return True

    def _x_forwarded_for(self, text: str) -> None:
        nodes: list[Address] = []
        for entry in text.split(","):
            parsed = _parse_node(entry.strip(), forwarded=False)
            if not isinstance(parsed, tuple):
                self.notes.append(f"malformed X-Forwarded-For header ignored: {text!r}")
                return
            nodes.append(parsed)
        self.client = nodes[self._walk(nodes)]

    def _walk(self, nodes: Sequence[Address | str | None]) -> int:
        """The index of the client: the first node from the right that is not a trusted
        proxy, or 0 if all are (always, with ``*``). Sets :attr:`hops`."""
        if self.trusted.everything:
            self.hops = len(nodes) - 1
            return 0
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            if not isinstance(node, tuple) or not self.trusted.trusts_canonical(node[0]):
                self.hops = len(nodes) - 1 - index
                return index
        self.hops = len(nodes) - 1
        return 0

    def _aligned(self, text: str) -> str:
        """The entry of a list header aligned with the chosen hop (rule 7)."""
        entries = text.split(",")
        return entries[max(len(entries) - 1 - self.hops, 0)].strip()

    def _set_scheme(self, proto: str) -> None:
        pair = _SCHEMES.get(proto.lower())
        if pair is None:
            self.notes.append(f"forwarded proto ignored: {proto!r} is not http or https")
            return
        self.scheme = pair[1] if self.scheme in _WEBSOCKET_SCHEMES else pair[0]

    def _prefix(self, text: str) -> None:
        prefix = self._aligned(text)
        if not prefix.startswith("/") or _BAD_PREFIX_CHAR.search(prefix):
            self.notes.append(f"malformed X-Forwarded-Prefix header ignored: {text!r}")
            return
        self.root_path = prefix.rstrip("/")


def _join(lines: list[bytes]) -> str:
    """Several header lines of one list header, as one comma-separated value (RFC 9110
    section 5.3). Latin-1 maps every byte to one character, so this never fails."""
    return (lines[0] if len(lines) == 1 else b",".join(lines)).decode("latin-1")


def _parse_forwarded(text: str) -> list[dict[str, str]] | None:
    """``Forwarded`` elements, each ``{parameter (lower-cased): value}``; None if malformed
    (a parameter repeated in one element is, RFC 7239 section 4). Empty elements are
    skipped (RFC 9110 section 5.6.1)."""
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:
        pair = _PAIR.match(text, position)
        if pair is None:
            while position < end and text[position] in " \t":
                position += 1
        else:
            name = pair[1].lower()
            if name in element:
                return None
            token, quoted = pair[2], pair[3]
            element[name] = token if token is not None else _QUOTED_PAIR.sub(r"\1", quoted)
            position = pair.end()
        if position >= end:
            break
        separator = text[position]
        if separator not in ",;":
            return None
        position += 1
        if separator == "," and element:
            elements.append(element)
            element = {}
    if element:
        elements.append(element)
    return elements


def _parse_node(text: str, *, forwarded: bool) -> Address | str | None:
    """A node: ``(host, port)``, the host in canonical form and port 0 if none is given; the
    name itself for ``unknown`` or an obfuscated identifier (``Forwarded`` only); or None if
    malformed."""
    if IPV4.fullmatch(text):
        return text, 0  # the common case, without the cost of ipaddress
    if forwarded and (text.lower() == "unknown" or _OBFUSCATED.fullmatch(text)):
        return text
    port_text = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
        if rest and not port_text:
            return None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text:
            return None
    else:
        host = text  # IPv4, or an IPv6 address without brackets (lenient)
    if IPV4.fullmatch(host):
        if text.startswith("["):
            return None  # brackets are for IPv6 only
    else:
        parsed = parse_ip(host)  # IPv6: every IPv4 form ipaddress takes is what IPV4 matches
        if parsed is None:
            return None
        host = parsed[1]
    if not port_text or (forwarded and _OBFUSCATED.fullmatch(port_text)):
        return host, 0
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        return None
    return host, int(port_text)


def _show_peer(peer: Address | None) -> str:
    if peer is None:
        return "an unknown peer"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
