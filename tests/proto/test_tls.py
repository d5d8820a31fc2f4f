"""Tier 1: the TLS building blocks (trio_asgi/_net/tls.py) without a handshake: the settings'
checks, the context built from trustme's certificates (TLS 1.2 at least, no compression, no
renegotiation, the verify mode, the cipher string), every file problem refused with a
ConfigError naming the field and the file, the per-context parts of the ASGI TLS extension
(the server certificate's PEM, IANA cipher ids), RFC 4514 subject strings of hand-built
and trustme certificates, what happens without cryptography (the ``tls`` extra), and a
reload that keeps the old context on failure with one log line.

Handshakes over loopback (ALPN, client certificates, the extension's fields, a reloaded
certificate reaching new connections) are in tests/integration/test_tls_blocks.py.
"""

from __future__ import annotations

import datetime
import logging
import ssl
import sys
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._errors import ConfigError
from trio_asgi._net.tls import (
    CLIENT_CERT_EXTRA_HINT,
    MINIMUM_VERSION,
    ReloadableContext,
    ServerTLS,
    TLSSettings,
    build_server_context,
    client_cert_names_available,
    load_server_tls,
    subject_rfc4514,
    tls_extension,
)

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    """Certificate, key, an encrypted key, another key, the CA, and junk, as files."""
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    other = ca.issue_cert("other.example")
    paths = {
        name: tmp_path / f"{name}.pem"
        for name in ("cert", "key", "both", "other_key", "ca", "junk", "encrypted_key")
    }
    leaf.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(paths["both"]))
    other.private_key_pem.write_to_path(str(paths["other_key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["junk"].write_text("not a PEM file\n")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    paths["encrypted_key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return paths


def settings(files: dict[str, Path], **overrides: object) -> TLSSettings:
    values: dict[str, object] = {"certfile": str(files["cert"]), "keyfile": str(files["key"])}
    values.update(overrides)
    return TLSSettings(**values)  # type: ignore[arg-type]


# --- the settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certfile": ""}, "ssl_certfile must be a non-empty str"),
        ({"keyfile": 3}, "ssl_keyfile must be None or a non-empty str, not 3"),
        ({"ciphers": ""}, "ssl_ciphers must be None or a non-empty str, not ''"),
        ({"cert_reqs": "maybe"}, "ssl_cert_reqs must be one of 'none', 'optional', 'required'"),
        ({"cert_reqs": "required"}, "ssl_cert_reqs='required' needs ssl_ca_certs"),
        ({"cert_reqs": "optional"}, "ssl_cert_reqs='optional' needs ssl_ca_certs"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"certfile": "cert.pem"}
    values.update(overrides)
    with pytest.raises(ConfigError, match=f"^{message}"):
        TLSSettings(**values)  # type: ignore[arg-type]


# --- the context ----------------------------------------------------------------------------


def test_the_context_is_a_server_context_of_tls12_at_least(files: dict[str, Path]) -> None:
    context = build_server_context(settings(files))
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER
    assert context.minimum_version == MINIMUM_VERSION == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("cert_reqs", "mode"),
    [("none", ssl.CERT_NONE), ("optional", ssl.CERT_OPTIONAL), ("required", ssl.CERT_REQUIRED)],
)
def test_cert_reqs_sets_the_verify_mode(
    files: dict[str, Path], cert_reqs: str, mode: ssl.VerifyMode
) -> None:
    context = build_server_context(settings(files, cert_reqs=cert_reqs, ca_certs=str(files["ca"])))
    assert context.verify_mode == mode
    assert context.cert_store_stats()["x509_ca"] == 1


def test_ciphers_restrict_the_tls12_suites(files: dict[str, Path]) -> None:
    context = build_server_context(settings(files, ciphers="ECDHE+AESGCM"))
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    }


def test_the_key_may_be_in_the_certificate_file(files: dict[str, Path]) -> None:
    server = load_server_tls(TLSSettings(certfile=str(files["both"])))
    assert server.server_cert == files["cert"].read_text()


def test_an_encrypted_key_loads_with_its_password(files: dict[str, Path]) -> None:
    server = load_server_tls(
        settings(files, keyfile=str(files["encrypted_key"]), keyfile_password=PASSWORD)
    )
    assert server.server_cert == files["cert"].read_text()


def test_the_per_context_parts_of_the_extension(files: dict[str, Path]) -> None:
    server = load_server_tls(settings(files))
    assert server.server_cert == files["cert"].read_text()  # the leaf, as PEM
    # IANA ids: RFC 8446 appendix B.4, RFC 5289 section 3, RFC 7905 section 2.
    assert server.cipher_suites["TLS_AES_128_GCM_SHA256"] == 0x1301
    assert server.cipher_suites["TLS_AES_256_GCM_SHA384"] == 0x1302
    assert server.cipher_suites["TLS_CHACHA20_POLY1305_SHA256"] == 0x1303
    assert server.cipher_suites["ECDHE-ECDSA-AES128-GCM-SHA256"] == 0xC02B
    assert server.cipher_suites["ECDHE-RSA-AES256-GCM-SHA384"] == 0xC030
    assert server.cipher_suites["ECDHE-RSA-CHACHA20-POLY1305"] == 0xCCA8


def test_a_context_passed_in_code_has_no_server_cert(files: dict[str, Path]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["cert"], files["key"])
    server = ServerTLS.from_context(context)
    assert server.server_cert is None
    assert server.cipher_suites["TLS_AES_128_GCM_SHA256"] == 0x1301


# --- every file problem, named --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certfile": "{missing}"}, "ssl_certfile '{missing}' cannot be read: No such file"),
        ({"keyfile": "{missing}"}, "ssl_keyfile '{missing}' cannot be read: No such file"),
        ({"certfile": "{junk}"}, "ssl_certfile '{junk}' holds no PEM certificate"),
        ({"certfile": "{key}"}, "ssl_certfile '{key}' holds no PEM certificate"),
        ({"keyfile": "{junk}"}, "ssl_keyfile '{junk}' holds no PEM private key"),
        ({"keyfile": "{cert}"}, "ssl_keyfile '{cert}' holds no PEM private key"),
        ({"keyfile": None}, "ssl_certfile '{cert}' holds no PEM private key"),
        (
            {"keyfile": "{other_key}"},
            "the key in ssl_keyfile '{other_key}' does not match the certificate in "
            "ssl_certfile '{cert}'",
        ),
        (
            {"keyfile": "{encrypted_key}"},
            "ssl_keyfile '{encrypted_key}' holds an encrypted key: give ssl_keyfile_password",
        ),
        (
            {"keyfile": "{encrypted_key}", "keyfile_password": "wrong"},
            "ssl_keyfile_password does not decrypt the key in '{encrypted_key}'",
        ),
        ({"ca_certs": "{missing}"}, "ssl_ca_certs '{missing}' cannot be read: No such file"),
        ({"ca_certs": "{junk}"}, "ssl_ca_certs '{junk}' holds no PEM certificate"),
        ({"ciphers": "NO-SUCH-CIPHER"}, "ssl_ciphers 'NO-SUCH-CIPHER' selects no cipher"),
    ],
)
def test_a_file_that_cannot_be_used_is_named(
    files: dict[str, Path], tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    names = {name: str(path) for name, path in files.items()}
    names["missing"] = str(tmp_path / "missing.pem")
    filled = {k: v.format(**names) if isinstance(v, str) else v for k, v in overrides.items()}
    with pytest.raises(ConfigError) as caught:
        load_server_tls(settings(files, **filled))
    assert str(caught.value).startswith(message.format(**names)), str(caught.value)


@pytest.mark.parametrize("body", ["!!!!", "MAMCAQE="], ids=["not base64", "not a certificate"])
def test_a_broken_certificate_block_is_no_certificate_not_a_key_error(
    files: dict[str, Path], tmp_path: Path, body: str
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"^ssl_certfile '.*bad.pem' holds no PEM certificate$"):
        load_server_tls(settings(files, certfile=str(bad)))


def test_the_extension_needs_a_completed_handshake(files: dict[str, Path]) -> None:
    server = load_server_tls(settings(files))
    ssl_object = server.context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    with pytest.raises(ValueError, match="needs a completed TLS handshake"):
        tls_extension(ssl_object, server)


def test_an_unreadable_path_says_why(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ssl_certfile '.*' cannot be read: Is a directory"):
        load_server_tls(settings(files, certfile=str(tmp_path)))


# --- reload ---------------------------------------------------------------------------------


def test_reload_builds_a_new_context_from_the_same_files(
    files: dict[str, Path], ca: trustme.CA
) -> None:
    reloadable = ReloadableContext(settings(files))
    before = reloadable.current
    renewed = ca.issue_cert("localhost")
    renewed.cert_chain_pems[0].write_to_path(str(files["cert"]))
    renewed.private_key_pem.write_to_path(str(files["key"]))
    assert reloadable.reload() is True
    assert reloadable.current is not before
    assert reloadable.current.server_cert == renewed.cert_chain_pems[0].bytes().decode()
    assert before.server_cert != reloadable.current.server_cert


def test_a_failed_reload_keeps_the_old_context_and_logs_one_line(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    reloadable = ReloadableContext(settings(files))
    before = reloadable.current
    files["cert"].write_text("truncated")
    with caplog.at_level(logging.INFO, logger="trio_asgi.error"):
        assert reloadable.reload() is False
    assert reloadable.current is before
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            logging.ERROR,
            "TLS reload failed, keeping the previous certificate: "
            f"ssl_certfile {str(files['cert'])!r} holds no PEM certificate",
            None,
        )
    ]


def test_a_bad_file_at_startup_raises(files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        ReloadableContext(settings(files, certfile=str(files["junk"])))


# --- RFC 4514 -------------------------------------------------------------------------------


def _certificate(subject: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _cn(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (_cn("alice"), "CN=alice"),
        (  # section 2.1: the last RDN first; section 3's short names
            x509.Name(
                [
                    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "org"),
                    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                    x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
                    x509.NameAttribute(NameOID.LOCALITY_NAME, "Mitte"),
                    x509.NameAttribute(NameOID.STREET_ADDRESS, "Unter den Linden 1"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "R&D"),
                    x509.NameAttribute(NameOID.USER_ID, "alice"),
                ]
            ),
            "UID=alice,OU=R&D,O=Example,STREET=Unter den Linden 1,L=Mitte,ST=Berlin,C=DE,"
            "DC=example,DC=org",
        ),
        (  # a multi-valued RDN: its attributes joined by "+"
            x509.Name(
                [
                    x509.RelativeDistinguishedName(
                        [
                            x509.NameAttribute(NameOID.COMMON_NAME, "bob"),
                            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
                        ]
                    ),
                    x509.RelativeDistinguishedName(
                        [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
                    ),
                ]
            ),
            "C=FR,CN=bob+OU=ops",
        ),
        # section 2.4's escaping
        (_cn("Example, Inc."), "CN=Example\\, Inc."),
        (_cn('a"b+c;d<e>f\\g'), 'CN=a\\"b\\+c\\;d\\<e\\>f\\\\g'),
        (_cn("#a"), "CN=\\#a"),
        (_cn(" a "), "CN=\\ a\\ "),
        (_cn("a\0b"), "CN=a\\00b"),
        # non-ASCII characters stay as they are (a UTF8String in the certificate)
        (_cn("Jürgen Weiß"), "CN=Jürgen Weiß"),
        (_cn("山田"), "CN=山田"),
        # types without a short name: the dotted OID, the value as a string
        (
            x509.Name(
                [
                    x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.example"),
                    x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), "x,y"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "c"),
                ]
            ),
            "CN=c,1.3.6.1.4.1.99999.1=x\\,y,1.2.840.113549.1.9.1=a@b.example",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_subject_string_is_rfc4514(subject: x509.Name, expected: str) -> None:
    assert subject_rfc4514(_certificate(subject)) == expected


def test_a_trustme_client_certificate_has_its_subject_written_out(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("client@example.org", common_name="Client, Ltd.")
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    subject = x509.load_der_x509_certificate(der).subject
    (unit,) = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert subject_rfc4514(der) == (
        f"CN=Client\\, Ltd.,OU={unit.value!s},O=trustme v{trustme.__version__}"
    )


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"not a certificate"])
def test_what_is_not_a_certificate_is_a_value_error(der: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's message is its own
        subject_rfc4514(der)


def test_a_truncated_certificate_is_a_value_error() -> None:
    der = _certificate(_cn("alice"))
    for cut in (1, 10, 100, len(der) - 1):
        with pytest.raises(ValueError):  # noqa: PT011
            subject_rfc4514(der[:cut])


@given(st.binary(max_size=300))
def test_any_bytes_give_a_name_or_value_error(data: bytes) -> None:
    try:
        result = subject_rfc4514(data)
    except ValueError:
        return
    assert isinstance(result, str)


# --- without the tls extra ------------------------------------------------------------------


def hide_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``cryptography`` unimportable (a None in ``sys.modules`` makes import fail)."""
    for name in list(sys.modules):
        if name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)


def test_client_cert_names_are_available_with_cryptography() -> None:
    assert client_cert_names_available() is True


def test_without_cryptography_names_are_unavailable_and_the_hint_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide_cryptography(monkeypatch)
    assert client_cert_names_available() is False
    assert "pip install cryptography" in CLIENT_CERT_EXTRA_HINT
    assert "pip install '.[tls]'" in CLIENT_CERT_EXTRA_HINT
    with pytest.raises(ImportError) as caught:
        subject_rfc4514(b"")
    assert str(caught.value) == CLIENT_CERT_EXTRA_HINT


class _Peer:
    """A completed handshake whose client sent ``leaf`` (DER)."""

    def __init__(self, leaf: bytes) -> None:
        self.leaf = leaf

    def version(self) -> str:
        return "TLSv1.3"

    def cipher(self) -> tuple[str, str, int]:
        return ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128)

    def getpeercert(self, binary_form: bool) -> bytes:
        return self.leaf


def test_the_extension_names_the_client_certificate(files: dict[str, Path]) -> None:
    der = _certificate(_cn("alice"))
    extension = tls_extension(_Peer(der), load_server_tls(settings(files)))
    assert extension["client_cert_chain"] == [ssl.DER_cert_to_PEM_cert(der)]
    assert extension["client_cert_name"] == "CN=alice"


def test_without_cryptography_the_extension_has_the_chain_but_no_name(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Startup refuses client certificates without the extra; a context passed in code may
    still ask for them: the connection is served, without the name."""
    der = _certificate(_cn("alice"))
    server = load_server_tls(settings(files))
    hide_cryptography(monkeypatch)
    extension = tls_extension(_Peer(der), server)
    assert extension["client_cert_chain"] == [ssl.DER_cert_to_PEM_cert(der)]
    assert extension["client_cert_name"] is None
