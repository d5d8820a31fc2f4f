"""The fields of :class:`~trio_asgi.Config` that say where and how it listens: the listening
sockets, TLS, and what proxies in front of it are believed.

:class:`NetworkFields` is a base of ``Config`` (one frozen dataclass for users; this split
keeps each module readable). ``Config.__post_init__`` calls :meth:`NetworkFields.check_network`;
the TLS files themselves are read when ``serve()`` starts (``_net/tls.py``), so a ``Config``
is a plain value that never touches the file system.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Final, Literal

from .._errors import ConfigError
from .._option import option as _option
from .._trust import DEFAULT_FORWARDED_ALLOW_IPS, TrustedProxies
from .checks import check_root_path, check_sockets, is_int

__all__ = ["CLIENT_CERT_EXTRA", "CertReqs", "NetworkFields"]

#: ``ssl_cert_reqs``: ``"none"``: no client certificate is asked for; ``"optional"``: asked
#: for and verified if sent; ``"required"``: a client without a valid one is refused.
CertReqs = Literal["none", "optional", "required"]
_CERT_REQS: Final = ("none", "optional", "required")
#: What names client certificates (RFC 4514) for the TLS extension's ``client_cert_name``.
CLIENT_CERT_EXTRA: Final = (
    "pip install '.[tls]' in a checkout of trio-asgi, else pip install cryptography"
)
_SSL_FILES: Final = ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers")


@dataclass(frozen=True, kw_only=True)
class NetworkFields:
    """Where :class:`~trio_asgi.Config` listens, with TLS or not, and whom it believes; the
    fields are documented on ``Config``."""

    host: str = field(
        default="127.0.0.1",
        metadata=_option(
            cli_help="Address to bind to.",
            meaning="Address to listen on. `127.0.0.1`: this machine only; `0.0.0.0`: every "
            "IPv4 interface; `::`: IPv6; a host name is resolved and every address it resolves "
            "to is listened on.",
        ),
    )
    port: int = field(
        default=8000,
        metadata=_option(
            cli_help="Port to bind to (0: any free port).",
            doc_type="`int`, 0 to 65535",
            meaning="TCP port. `0` lets the operating system choose a free port; `serve()` "
            "reports the bound addresses to `nursery.start()`, and the log line "
            "`Listening on http://HOST:PORT` names them.",
        ),
    )
    bind: tuple[str, ...] = field(
        default=(),
        metadata=_option(
            cli_help="Listen on HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N; repeat for "
            "several. Replaces --host/--port.",
            show_default=False,
            doc_type="`tuple[str, ...]`",
            meaning="Where to listen: `127.0.0.1:8000`, `[::1]:8000`, `unix:/run/app.sock`, "
            "`fd://3`, as many as wanted. With `uds` and `fd` they replace `host` and `port` "
            "(as gunicorn's `--bind` does); those apply only when none of the three is given. "
            "See [README](../README.md#listening-sockets).",
        ),
    )
    uds: str | None = field(
        default=None,
        metadata=_option(
            cli_help="Listen on a Unix domain socket at this path (as --bind unix:PATH).",
            show_default=False,
            doc_type="`str`, a path, or none",
            meaning="Listen on a Unix socket at this path, as `bind` `unix:PATH` does; a "
            "stale file of a dead server is replaced, the file is removed at shutdown.",
        ),
    )
    fd: int | None = field(
        default=None,
        metadata=_option(
            cli_help="Serve the inherited listening socket with this descriptor (as --bind "
            "fd://N).",
            show_default=False,
            doc_type="`int`, or none",
            meaning="Serve an inherited listening socket (TCP or Unix), as `bind` `fd://N`.",
        ),
    )
    uds_permissions: int | None = field(
        default=None,
        metadata=_option(
            cli_help="Mode of the Unix socket files, in octal (660 or 0o660).",
            show_default="the umask's",
            octal=True,
            doc_type="`int`, a mode (octal on the CLI), or none",
            meaning="The permission bits Unix socket files get before they listen.",
        ),
    )
    ssl_certfile: str | None = field(
        default=None,
        metadata=_option(
            cli_help="Serve HTTPS: the PEM file of the server certificate (then any "
            "intermediates; the key too unless --ssl-keyfile).",
            show_default=False,
            doc_type="`str`, a path, or none",
            meaning="Serve TLS (HTTPS, WSS) on every TCP listener (Unix sockets stay plain): "
            "the PEM file with the certificate first, then its intermediates, and the private "
            "key too unless `ssl_keyfile` names it. Read again on SIGHUP. See "
            "[README](../README.md#serving-over-tls).",
        ),
    )
    ssl_keyfile: str | None = field(
        default=None,
        metadata=_option(
            cli_help="The PEM file of the private key, if not in --ssl-certfile.",
            show_default=False,
            doc_type="`str`, a path, or none",
            meaning="The PEM file of the private key, when it is not in `ssl_certfile`.",
        ),
    )
    ssl_keyfile_password: str | None = field(
        default=None,
        repr=False,  # a secret: never in a logged Config
        metadata=_option(
            cli_help="The password of an encrypted --ssl-keyfile.",
            show_default=False,
            doc_type="`str`, or none",
            meaning="The password that decrypts an encrypted private key.",
        ),
    )
    ssl_ca_certs: str | None = field(
        default=None,
        metadata=_option(
            cli_help="The PEM file of the CAs whose client certificates are accepted.",
            show_default=False,
            doc_type="`str`, a path, or none",
            meaning="The PEM file of the CAs that sign the client certificates to accept "
            "(with `ssl_cert_reqs`).",
        ),
    )
    ssl_cert_reqs: CertReqs = field(
        default="none",
        metadata=_option(
            cli_help="Client certificates: none (not asked), optional (checked if sent) or "
            "required.",
            meaning="`none`: no client certificate is asked for. `optional`: asked for, and "
            "checked against `ssl_ca_certs` if sent. `required`: a client without a valid one "
            "fails the handshake. The app reads it in "
            '`scope["extensions"]["tls"]`; needs '
            "`pip install '.[tls]'` (cryptography).",
        ),
    )
    ssl_ciphers: str | None = field(
        default=None,
        metadata=_option(
            cli_help="OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are not set by it).",
            show_default="Python's defaults",
            doc_type="`str`, or none",
            meaning="The TLS 1.2 cipher suites, as an OpenSSL cipher string "
            "(`ECDHE+AESGCM`); TLS 1.3 suites are OpenSSL's.",
        ),
    )
    ssl_context: ssl.SSLContext | None = field(
        default=None,
        metadata=_option(
            cli_help=None,
            doc_type="`ssl.SSLContext`, or none",
            meaning="A server context made in code, used instead of the `ssl_*` files "
            "(which must then be unset); it is used as it is (set its ALPN to "
            '`["http/1.1"]`, its minimum version, its certificates yourself) and not '
            "reloaded on SIGHUP.",
        ),
    )
    tls_handshake_timeout: float = field(
        default=10.0,
        metadata=_option(
            cli_help="Seconds a client gets to complete the TLS handshake (inf: no limit).",
            doc_type="`float`, seconds",
            meaning="A TLS client that has not completed its handshake in this time is "
            "disconnected (one DEBUG line); other clients are never held up by it.",
        ),
    )
    root_path: str = field(
        default="",
        metadata=_option(
            cli_help="Path prefix the app is mounted under behind a proxy, e.g. /api.",
            show_default=False,
            meaning="The path prefix the app is mounted under behind a proxy, e.g. `/api`; "
            'becomes `scope["root_path"]`. `""`, or starts with `/` and does not end with '
            '`/`. `scope["path"]` is not prefixed with it: see '
            "[asgi.md](asgi.md#root_path-and-path).",
        ),
    )
    proxy_headers: bool = field(
        default=True,
        metadata=_option(
            cli_help="Believe X-Forwarded-For/-Proto/-Prefix and Forwarded from "
            "--forwarded-allow-ips peers.",
            meaning="Believe `X-Forwarded-*` and `Forwarded` from `forwarded_allow_ips` "
            "peers; see [deployment.md](deployment.md#behind-a-proxy-the-trust-model).",
        ),
    )
    forwarded_allow_ips: str = field(
        default=DEFAULT_FORWARDED_ALLOW_IPS,
        metadata=_option(
            cli_help="Peers trusted to send proxy headers: comma list of IPs, CIDRs, unix, or *.",
            extra_envvars=("FORWARDED_ALLOW_IPS",),
            meaning="IPs, CIDRs, `unix` (Unix-socket peers) or `*`; `FORWARDED_ALLOW_IPS` "
            "(uvicorn's) is read after `TRIO_ASGI_FORWARDED_ALLOW_IPS`.",
        ),
    )
    proxy_protocol: bool = field(
        default=False,
        metadata=_option(
            cli_help="Read a PROXY protocol v1/v2 header (HAProxy send-proxy, TCP load "
            "balancers) from --forwarded-allow-ips peers before HTTP.",
            meaning="Every connection from a `forwarded_allow_ips` peer must begin with a PROXY "
            "protocol v1 or v2 header, whose addresses become the scope's `client` and "
            "`server`; other peers, and a missing or malformed header, are closed.",
        ),
    )

    @property
    def tls_enabled(self) -> bool:
        """TLS is served on the TCP listeners (``ssl_certfile`` or ``ssl_context`` is set)."""
        return self.ssl_certfile is not None or self.ssl_context is not None

    def check_network(self) -> None:
        """Validate these fields (``Config.__post_init__`` calls it first).

        Raises:
            ConfigError: naming the field and what to fix.
        """
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a non-empty str, not {self.host!r}")
        if not is_int(self.port) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an int from 0 to 65535, not {self.port!r}")
        # bind, kept a tuple (frozen, hashable), uds, fd, uds_permissions; parsed at serve()
        object.__setattr__(
            self, "bind", check_sockets(self.bind, self.uds, self.fd, self.uds_permissions)
        )
        self._check_tls()
        check_root_path(self.root_path)
        TrustedProxies.parse(self.forwarded_allow_ips)  # raises ConfigError naming the entry

    def _check_tls(self) -> None:
        for name in ("ssl_certfile", *_SSL_FILES):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{name} must be None or a non-empty str, not {value!r}")
        if self.ssl_cert_reqs not in _CERT_REQS:
            raise ConfigError(
                "ssl_cert_reqs must be one of 'none', 'optional', 'required', "
                f"not {self.ssl_cert_reqs!r}"
            )
        context = self.ssl_context
        if context is not None:
            if not isinstance(context, ssl.SSLContext):
                raise ConfigError(f"ssl_context must be an ssl.SSLContext, not {context!r}")
            if context.protocol == ssl.PROTOCOL_TLS_CLIENT:
                raise ConfigError(
                    "ssl_context is a client context (PROTOCOL_TLS_CLIENT); make a server one: "
                    "ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)"
                )
            given = [name for name in ("ssl_certfile", *_SSL_FILES) if getattr(self, name)]
            if self.ssl_cert_reqs != "none":
                given.append("ssl_cert_reqs")
            if given:
                raise ConfigError(
                    f"ssl_context is used as it is: set {', '.join(given)} on it instead"
                )
            if context.verify_mode != ssl.CERT_NONE:
                _check_client_cert_names("ssl_context.verify_mode asks for client certificates")
            return
        if self.ssl_certfile is None:
            given = [name for name in _SSL_FILES if getattr(self, name) is not None]
            if self.ssl_cert_reqs != "none":
                given.append("ssl_cert_reqs")
            if given:
                raise ConfigError(f"{given[0]} needs ssl_certfile (the server certificate)")
            return
        if self.ssl_cert_reqs != "none":
            if self.ssl_ca_certs is None:
                raise ConfigError(
                    f"ssl_cert_reqs={self.ssl_cert_reqs!r} needs ssl_ca_certs: the PEM file "
                    "of the CAs that sign the client certificates to accept"
                )
            _check_client_cert_names(f"ssl_cert_reqs={self.ssl_cert_reqs!r}")


def _check_client_cert_names(what: str) -> None:
    """Client certificates are named (RFC 4514) by cryptography: refuse ``what`` without it."""
    if find_spec("cryptography") is None:
        raise ConfigError(
            f"{what}: naming client certificates needs cryptography: {CLIENT_CERT_EXTRA}"
        )
