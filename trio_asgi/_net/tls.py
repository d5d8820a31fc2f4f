"""TLS building blocks: the server context, certificate rotation, the ASGI TLS extension.

Stdlib :mod:`ssl`, no trio (and ``cryptography``, imported on first use, for a client
certificate's name): the connection seam wraps its socket (``_net/tls_transport.py``) with
:attr:`ReloadableContext.current`'s context and, after the handshake, asks
:func:`tls_extension` (given the ``ssl.SSLSocket``) for the scope's ``extensions["tls"]``.

- :class:`TLSSettings` holds uvicorn's options (``--ssl-certfile``, ``--ssl-keyfile``,
  ``--ssl-keyfile-password``, ``--ssl-ca-certs``, ``--ssl-cert-reqs``, ``--ssl-ciphers``);
  :func:`load_server_tls` turns them into a :class:`ServerTLS`: the :class:`ssl.SSLContext`
  (TLS 1.2 at least, ALPN ``http/1.1``, no compression, no renegotiation) and what every
  connection's extension shares (the server certificate's PEM, cipher names to IANA ids),
  computed once per context. Every file that cannot be used raises
  :class:`~trio_asgi.ConfigError` with a message naming the field, the file and what to fix.
- :class:`ReloadableContext` keeps the current :class:`ServerTLS`; :meth:`~ReloadableContext
  .reload` reads the files again (on SIGHUP) and keeps the old context if they fail, with one
  error line. A connection takes ``.current`` when it starts, so a reload changes only the
  connections accepted after it.
- :func:`tls_extension` follows the ASGI TLS extension, version 0.2 (asgiref
  ``specs/tls.rst``), to the letter, with what Python's :mod:`ssl` can know:

  ``server_cert``
      the first certificate of ``ssl_certfile`` as PEM (read when the context is built), or
      None for an ``ssl.SSLContext`` passed in code (its certificate cannot be read back).
  ``client_cert_chain``
      the certificates the client sent, leaf first, as PEM. Python before 3.13 exposes only
      the leaf (``getpeercert(binary_form=True)``), so the list has at most one entry there;
      3.13's ``get_unverified_chain()`` (``ssl.SSLSocket``, ``ssl.SSLObject``) gives the
      whole chain as sent.
  ``client_cert_name``
      the leaf's Subject as an RFC 4514 string, as ``cryptography`` writes it (see
      :func:`subject_rfc4514`), or None without a client certificate. The spec asks for it
      whenever ``client_cert_chain`` is not empty, so client certificates need the ``tls``
      extra (``pip install cryptography``; :func:`client_cert_names_available`,
      :data:`CLIENT_CERT_EXTRA_HINT`); without it, or for a certificate OpenSSL accepted
      but ``cryptography`` cannot read, the chain is given and the name is None.
  ``client_cert_error``
      always None: OpenSSL, as Python drives it (no verify callback), fails the handshake
      when a client certificate does not verify, with ``cert_reqs`` ``optional`` as with
      ``required``, so no connection with a failed verification reaches the app.
  ``tls_version``
      ``0x0301`` to ``0x0304`` from ``SSLObject.version()``.
  ``cipher_suite``
      the IANA id of the negotiated suite: the low 16 bits of the ``id`` that
      ``SSLContext.get_ciphers()`` gives for the OpenSSL name ``SSLObject.cipher()``
      returns (OpenSSL's ids are ``0x0300XXXX``, ``XXXX`` being the IANA value), or None
      for a name the context does not list.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from .._config.network import CertReqs  # the one definition: Config.ssl_cert_reqs
from .._errors import ConfigError
from .._logging import error_logger

__all__ = [
    "CLIENT_CERT_EXTRA_HINT",
    "DEFAULT_ALPN",
    "MINIMUM_VERSION",
    "CertReqs",
    "ReloadableContext",
    "ServerTLS",
    "TLSPeer",
    "TLSSettings",
    "build_server_context",
    "client_cert_names_available",
    "load_server_tls",
    "subject_rfc4514",
    "tls_extension",
]

#: What ALPN advertises by default (RFC 7301); HTTP/2 will put ``"h2"`` first.
DEFAULT_ALPN: Final = ("http/1.1",)
MINIMUM_VERSION: Final = ssl.TLSVersion.TLSv1_2

_VERIFY_MODES: Final = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
#: OpenSSL 1.1.0h and later; where missing, renegotiation stays as OpenSSL has it.
_NO_RENEGOTIATION: Final[int] = getattr(ssl, "OP_NO_RENEGOTIATION", 0)
_PEM_BEGIN: Final = "-----BEGIN CERTIFICATE-----"
_PEM_END: Final = "-----END CERTIFICATE-----"
#: ``SSLObject.version()`` to the protocol version's wire value (RFC 8446 appendix B.1 and
#: its predecessors).
_TLS_VERSIONS: Final = {
    "SSLv3": 0x0300,
    "TLSv1": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}
_OPENSSL_TLS_CIPHER: Final = 0x0300_0000  # OpenSSL's id prefix for a TLS/SSLv3 suite


@dataclass(frozen=True, kw_only=True)
class TLSSettings:
    """Where the server's TLS files are and how clients are checked (uvicorn's meanings).

    Attributes:
        certfile: PEM file with the server certificate first, then any intermediates (and
            the private key too when ``keyfile`` is None).
        keyfile: PEM file with the private key, or None when it is in ``certfile``.
        keyfile_password: the password of an encrypted key, or None.
        ca_certs: PEM file of the CAs whose client certificates are accepted, or None.
        cert_reqs: ``"none"`` (no client certificate asked), ``"optional"`` (asked, checked
            if sent), ``"required"`` (a client without a valid one is refused).
        ciphers: an OpenSSL cipher string for TLS 1.2 (``SSLContext.set_ciphers``), or None
            for Python's defaults. TLS 1.3 suites are not set by it.

    Raises:
        ConfigError: a field has the wrong type, ``cert_reqs`` is not one of the three, or
            ``cert_reqs`` asks for client certificates without ``ca_certs``.
    """

    certfile: str
    keyfile: str | None = None
    keyfile_password: str | None = None
    ca_certs: str | None = None
    cert_reqs: CertReqs = "none"
    ciphers: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.certfile, str) or not self.certfile:
            raise ConfigError(
                f"ssl_certfile must be a non-empty str (a path), not {self.certfile!r}"
            )
        for name in ("keyfile", "keyfile_password", "ca_certs", "ciphers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"ssl_{name} must be None or a non-empty str, not {value!r}")
        if self.cert_reqs not in _VERIFY_MODES:
            raise ConfigError(
                f"ssl_cert_reqs must be one of 'none', 'optional', 'required', "
                f"not {self.cert_reqs!r}"
            )
        if self.cert_reqs != "none" and self.ca_certs is None:
            raise ConfigError(
                f"ssl_cert_reqs={self.cert_reqs!r} needs ssl_ca_certs: the PEM file of the "
                "CAs that sign the client certificates to accept"
            )


@dataclass(frozen=True)
class ServerTLS:
    """One server context and what every connection's TLS extension shares.

    Attributes:
        context: the context to wrap each accepted connection in.
        server_cert: the certificate the server sends, as PEM, or None if unknown.
        cipher_suites: OpenSSL cipher name to IANA cipher-suite id, for the suites the
            context may negotiate.
    """

    context: ssl.SSLContext
    server_cert: str | None = None
    cipher_suites: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: ssl.SSLContext, server_cert: str | None = None) -> ServerTLS:
        """Wrap a ready context (``Config(ssl_context=...)``); ``server_cert`` as PEM or None."""
        suites = {
            cipher["name"]: cipher["id"] & 0xFFFF
            for cipher in context.get_ciphers()
            if cipher["id"] & 0xFFFF_0000 == _OPENSSL_TLS_CIPHER
        }
        return cls(context, server_cert, suites)


def build_server_context(
    settings: TLSSettings, *, alpn_protocols: Sequence[str] = DEFAULT_ALPN
) -> ssl.SSLContext:
    """The server :class:`ssl.SSLContext` for ``settings`` (see :func:`load_server_tls`)."""
    return load_server_tls(settings, alpn_protocols=alpn_protocols).context


def load_server_tls(
    settings: TLSSettings, *, alpn_protocols: Sequence[str] = DEFAULT_ALPN
) -> ServerTLS:
    """Read the files of ``settings`` and build the server context.

    The context is ``PROTOCOL_TLS_SERVER`` with ``minimum_version`` TLS 1.2, ALPN
    ``alpn_protocols`` (RFC 7301; a client that offers none of them gets no ALPN answer),
    ``OP_NO_COMPRESSION`` (CRIME) and ``OP_NO_RENEGOTIATION`` where OpenSSL has it, the
    verify mode of ``cert_reqs`` and the cipher string of ``ciphers``.

    Raises:
        ConfigError: a file cannot be read, holds no PEM certificate or key, the key is
            encrypted and no password was given, the password is wrong, the key does not
            match the certificate, ``ca_certs`` holds no certificate, or ``ciphers`` selects
            no cipher. The message names the field and the file.
    """
    cert_text = _read("ssl_certfile", settings.certfile)
    server_cert = _first_certificate(cert_text)
    if server_cert is None:
        raise ConfigError(f"ssl_certfile {settings.certfile!r} holds no PEM certificate")
    key_field, key_path = (
        ("ssl_keyfile", settings.keyfile)
        if settings.keyfile is not None
        else ("ssl_certfile", settings.certfile)
    )
    key_text = cert_text if settings.keyfile is None else _read("ssl_keyfile", settings.keyfile)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    context.options |= ssl.OP_NO_COMPRESSION | _NO_RENEGOTIATION
    context.set_alpn_protocols(list(alpn_protocols))
    password = settings.keyfile_password
    try:
        # Always a password (or a callback): without one, OpenSSL would prompt on the terminal.
        context.load_cert_chain(
            settings.certfile, settings.keyfile, password if password is not None else _no_password
        )
    except _PasswordNeeded:
        raise ConfigError(
            f"{key_field} {key_path!r} holds an encrypted key: give ssl_keyfile_password"
        ) from None
    except ssl.SSLError as exc:
        raise _key_error(exc, settings, key_field, key_path, key_text) from None
    except OSError as exc:  # the file changed between reading it and loading it
        raise ConfigError(f"{key_field} {key_path!r} cannot be read: {exc.strerror}") from None
    if settings.ca_certs is not None:
        _read("ssl_ca_certs", settings.ca_certs)
        try:
            context.load_verify_locations(cafile=settings.ca_certs)
        except ssl.SSLError:
            raise ConfigError(
                f"ssl_ca_certs {settings.ca_certs!r} holds no PEM certificate"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"ssl_ca_certs {settings.ca_certs!r} cannot be read: {exc.strerror}"
            ) from None
    context.verify_mode = _VERIFY_MODES[settings.cert_reqs]
    if settings.ciphers is not None:
        try:
            context.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise ConfigError(
                f"ssl_ciphers {settings.ciphers!r} selects no cipher this OpenSSL "
                f"({ssl.OPENSSL_VERSION}) offers; see `openssl ciphers -v`"
            ) from None
    return ServerTLS.from_context(context, server_cert)


class _PasswordNeeded(Exception):
    """Raised by the password callback when the key is encrypted and no password was given."""


def _no_password() -> str:
    raise _PasswordNeeded


def _read(name: str, path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(f"{name} {path!r} cannot be read: {exc.strerror}") from None


def _first_certificate(text: str) -> str | None:
    """The first PEM certificate in ``text``, re-encoded by :mod:`ssl`, or None."""
    start = text.find(_PEM_BEGIN)
    end = text.find(_PEM_END, start)
    if start == -1 or end == -1:
        return None
    try:
        der = ssl.PEM_cert_to_DER_cert(text[start : end + len(_PEM_END)])
        # OpenSSL parses it, so a broken certificate is not blamed on the key later.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
    except (ValueError, ssl.SSLError):
        return None
    return ssl.DER_cert_to_PEM_cert(der)


def _key_error(
    exc: ssl.SSLError, settings: TLSSettings, key_field: str, key_path: str, key_text: str
) -> ConfigError:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return ConfigError(
            f"the key in {key_field} {key_path!r} does not match the certificate in "
            f"ssl_certfile {settings.certfile!r}"
        )
    if "PRIVATE KEY-----" not in key_text:
        return ConfigError(f"{key_field} {key_path!r} holds no PEM private key")
    if settings.keyfile_password is not None and "ENCRYPTED" in key_text:
        return ConfigError(f"ssl_keyfile_password does not decrypt the key in {key_path!r}")
    return ConfigError(
        f"ssl_certfile {settings.certfile!r} with {key_field} {key_path!r} cannot be loaded: {exc}"
    )


class ReloadableContext:
    """The current :class:`ServerTLS`, read again from the same files on :meth:`reload`.

    Args:
        settings: the files and options.
        alpn_protocols: what ALPN advertises.

    Raises:
        ConfigError: the files cannot be used at startup (see :func:`load_server_tls`).
    """

    __slots__ = ("_alpn", "_current", "settings")

    def __init__(
        self, settings: TLSSettings, *, alpn_protocols: Sequence[str] = DEFAULT_ALPN
    ) -> None:
        self.settings = settings
        self._alpn = tuple(alpn_protocols)
        self._current = load_server_tls(settings, alpn_protocols=self._alpn)

    @property
    def current(self) -> ServerTLS:
        """The context for a connection that starts now."""
        return self._current

    def reload(self) -> bool:
        """Read the certificate, key and CA files again and use them for new connections.

        Returns:
            True if the new context replaced the old one; False if the files failed to load,
            in which case one line is logged on ``trio_asgi.error`` (no traceback) and the
            old context stays in use.
        """
        try:
            self._current = load_server_tls(self.settings, alpn_protocols=self._alpn)
        except ConfigError as exc:
            error_logger.error("TLS reload failed, keeping the previous certificate: %s", exc)
            return False
        error_logger.info("TLS certificate reloaded from %s", self.settings.certfile)
        return True


class TLSPeer(Protocol):
    """What :func:`tls_extension` asks of a connection: an :class:`ssl.SSLSocket` (what
    ``TLSTransport`` drives), an :class:`ssl.SSLObject`, or a ``trio.SSLStream``, which
    forwards these to its own after the handshake."""

    def version(self) -> str | None: ...

    def cipher(self) -> tuple[str, str, int] | None: ...

    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...


def tls_extension(peer: TLSPeer, server: ServerTLS) -> dict[str, object]:
    """The ASGI TLS extension (spec 0.2) for a connection whose handshake has completed.

    Plain data only (str, int, list, None); see the module docstring for each field.
    ``server`` is the :class:`ServerTLS` whose context the connection was wrapped in. Built
    once per connection: each request's scope may share it or take a shallow copy.

    Raises:
        ValueError: the handshake has not completed (``version()`` is None; a
            ``trio.SSLStream`` raises its ``NeedHandshakeError`` itself).
    """
    version = peer.version()
    if version is None:
        raise ValueError("tls_extension needs a completed TLS handshake")
    chain = _client_chain(peer)
    name: str | None = None
    if chain:
        try:
            name = subject_rfc4514(chain[0])
        except ValueError:  # OpenSSL accepted it, cryptography does not read it
            name = None
        except ImportError:  # no tls extra: refused at startup, unless a context came in code
            name = None
    cipher = peer.cipher()
    return {
        "server_cert": server.server_cert,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der) for der in chain],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version),
        "cipher_suite": server.cipher_suites.get(cipher[0]) if cipher is not None else None,
    }


def _client_chain(peer: TLSPeer) -> list[bytes]:
    """The client's certificates as DER, leaf first ([] without a client certificate).

    The whole chain only from an :class:`ssl.SSLSocket` or :class:`ssl.SSLObject` on Python
    3.13 and later (``get_unverified_chain``); else the leaf.
    """
    leaf = peer.getpeercert(binary_form=True)
    if leaf is None:
        return []
    if sys.version_info >= (3, 13) and isinstance(
        peer, (ssl.SSLSocket, ssl.SSLObject)
    ):  # pragma: no cover
        chain = list(peer.get_unverified_chain())
        return chain if chain and chain[0] == leaf else [leaf, *chain]
    return [leaf]


# --- RFC 4514: the Subject of a DER certificate as a string -------------------------------

#: Why client certificates need the ``tls`` extra, for a :class:`~trio_asgi.ConfigError`
#: (or any message) that refuses them when :func:`client_cert_names_available` is False.
CLIENT_CERT_EXTRA_HINT: Final = (
    "client certificates (ssl_cert_reqs 'optional' or 'required') need the cryptography "
    "package, which names the certificate's subject for the ASGI TLS extension's "
    "client_cert_name (the tls extra): pip install '.[tls]' in a trio-asgi checkout, or "
    "pip install cryptography"
)


def client_cert_names_available() -> bool:
    """Whether :func:`subject_rfc4514` can run: the ``cryptography`` package (the ``tls``
    extra, ``pip install '.[tls]'``) imports. Imports it, once per process."""
    try:
        import cryptography.x509  # noqa: F401 - imported only to see that it can be
    except ImportError:
        return False
    return True


def subject_rfc4514(der: bytes) -> str:
    """The Subject of the DER certificate ``der`` as an RFC 4514 string.

    As ``cryptography`` writes it (``Name.rfc4514_string()``): RDNs last first, joined by
    ``,`` (section 2.1); a multi-valued RDN's attributes joined by ``+``; section 3's short
    names (CN, L, ST, O, OU, C, STREET, DC, UID); section 2.4's escaping (``\\,``,
    ``\\+``, a leading ``#`` or space, a trailing space, ``\\00`` for NUL); non-ASCII
    characters as they are (UTF-8 in the string). A type without a short name is written
    in dotted form with its value as a string (``1.2.840.113549.1.9.1=a@b.example``), not
    as section 2.4's ``#`` and BER hex. ``cryptography`` is imported here, on first use,
    so a server that asks for no client certificate does not need it.

    Raises:
        ValueError: ``der`` is not a DER X.509 certificate.
        ImportError: ``cryptography`` is not installed (the message is
            :data:`CLIENT_CERT_EXTRA_HINT`).
    """
    try:
        from cryptography import x509
    except ImportError as exc:
        raise ImportError(CLIENT_CERT_EXTRA_HINT) from exc
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
