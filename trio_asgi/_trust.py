"""Who may tell us the client, scheme and root path: ``Config.forwarded_allow_ips`` parsed.
Pure, layer 0 (it imports only ``_errors``), so :class:`~trio_asgi.Config` can validate the
setting on construction; ``_http.forwarded`` reads the headers themselves.

:class:`TrustedProxies` holds IPv4 and IPv6 addresses, CIDR networks, ``unix`` (peers on a
Unix socket) and ``*`` (everyone); :meth:`TrustedProxies.trusts` answers per request, a set
lookup in the common case. Canonical IPv4 text is recognised by one regular expression
(:data:`IPV4`), never parsed by :mod:`ipaddress`; other address texts are parsed once and
remembered (:func:`parse_ip`, :data:`PARSE_CACHE_SIZE` of them).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from ._errors import ConfigError

__all__ = [
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "IPV4",
    "PARSE_CACHE_SIZE",
    "TrustedProxies",
    "canonical",
    "parse_ip",
]

#: ``Config.forwarded_allow_ips``'s default: the loopback addresses, where a proxy on the
#: same host connects from.
DEFAULT_FORWARDED_ALLOW_IPS: Final = "127.0.0.1,::1"

#: Address texts whose parse is remembered (about 200 bytes each: 1024 is some 200 KiB).
PARSE_CACHE_SIZE: Final = 1024

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: An IPv4 address in the one form ``str(IPv4Address)`` gives (no leading zeros).
IPV4: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The peers whose proxy headers are believed (``Config.forwarded_allow_ips``, parsed).

    Build it with :meth:`parse`. Immutable, shared by every connection of a server.

    Attributes:
        everything: ``*`` was given: every peer is trusted, Unix-socket peers too.
        unix: ``unix`` was given: peers on a Unix socket are trusted.
        addresses: the plain addresses given, as canonical strings (``"::1"``), so the
            common check is one set lookup on the peer's host string.
        networks: the CIDR networks given (``10.0.0.0/8``, ``fd00::/8``).
    """

    everything: bool = False
    unix: bool = False
    addresses: frozenset[str] = frozenset()
    networks: tuple[_IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: str) -> TrustedProxies:
        """Parse a ``--forwarded-allow-ips`` value: a comma-separated list of IPv4 or IPv6
        addresses, CIDR networks, ``unix`` and ``*``. Blanks around entries and empty
        entries are ignored, so ``""`` trusts no one.

        Raises:
            ConfigError: an entry is none of those (a host name, a malformed address, a
                network with host bits set); the message names the entry and what is
                allowed.
        """
        if not isinstance(value, str):
            raise ConfigError(f"forwarded_allow_ips must be a str, not {value!r}")
        everything = unix = False
        addresses: set[str] = set()
        networks: list[_IPNetwork] = []
        for raw in value.split(","):
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                everything = True
            elif entry.lower() == "unix":
                unix = True
            elif "/" in entry:
                networks.append(_parse_network(entry))
            else:
                addresses.add(canonical(_parse_address(entry)))
        return cls(everything, unix, frozenset(addresses), tuple(networks))

    def trusts(self, peer_host: str | None, is_unix: bool) -> bool:
        """Whether proxy headers from this peer are believed.

        Args:
            peer_host: the peer's address as the socket gives it (``"127.0.0.1"``,
                ``"::1"``), or None when not known.
            is_unix: the peer is on a Unix socket (then ``peer_host`` is not looked at).

        Returns:
            True if ``*`` was given, or ``unix`` for a Unix-socket peer, or the host is one
            of the addresses or inside one of the networks (an IPv4-mapped IPv6 address
            counts as its IPv4 address). Never raises: a host that is not an address is
            simply not trusted.
        """
        if self.everything:
            return True
        if is_unix:
            return self.unix
        if peer_host is None:
            return False
        if peer_host in self.addresses:
            return True
        if not self.networks and IPV4.fullmatch(peer_host):
            return False  # a canonical IPv4 address not given: no need to parse it
        parsed = parse_ip(peer_host)
        return parsed is not None and self._trusts_parsed(*parsed)

    def trusts_canonical(self, host: str) -> bool:
        """:meth:`trusts` for a host already in canonical form (as :func:`parse_ip` gives
        it), not on a Unix socket; ``*`` is not looked at (the caller checks
        :attr:`everything`)."""
        if host in self.addresses:
            return True
        if not self.networks and not host.startswith("::ffff:"):
            return False
        parsed = parse_ip(host)
        return parsed is not None and self._trusts_parsed(*parsed)

    def _trusts_parsed(self, address: _IPAddress, text: str) -> bool:
        """Whether an address is one given or in a network given (``*`` not looked at)."""
        if text in self.addresses:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
            if canonical(address) in self.addresses:
                return True
        return any(address in network for network in self.networks)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_ip(text: str) -> tuple[_IPAddress, str] | None:
    """``(address, canonical string)``, or None if ``text`` is not an IP address. Cached:
    the ipaddress module takes microseconds for an IPv6 address, and the same clients and
    proxies come back request after request; a flood of new addresses only evicts."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address, canonical(address)


def _parse_address(entry: str) -> _IPAddress:
    try:
        return ipaddress.ip_address(entry)
    except ValueError:
        raise ConfigError(
            f"forwarded_allow_ips entry {entry!r} is not an IP address, a CIDR network "
            "(e.g. 10.0.0.0/8 or fd00::/8), 'unix' or '*'"
        ) from None


def _parse_network(entry: str) -> _IPNetwork:
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ConfigError(
            f"forwarded_allow_ips entry {entry!r} is not a CIDR network "
            "(e.g. 10.0.0.0/8 or fd00::/8), nor an IP address, 'unix' or '*'"
        ) from None
    raise ConfigError(
        f"forwarded_allow_ips entry {entry!r} has host bits set: write {str(loose)!r} "
        "(entries are IP addresses, CIDR networks, 'unix' or '*')"
    )


def canonical(address: _IPAddress) -> str:
    """The address as a socket would name the peer, and as the scope shows it."""
    return str(address)
