"""Tier 3: real TLS handshakes with the building blocks of trio_asgi/_net/tls.py, before they
are wired into the server: ``trio.SSLStream`` on both ends of a loopback socket pair, the
server end in the context built from trustme's certificates.

TLS 1.2 and 1.3 are accepted and TLS 1.1 refused; ALPN picks ``http/1.1`` (``h2`` when asked
to advertise it); a required client certificate is accepted when the CA signed it and
refused otherwise, an optional one may be left out; the ASGI TLS extension's fields agree
with what the client sees; after a reload, new connections get the new certificate, and a
broken file leaves the old one in use.

The context's options and every file error are in tests/proto/test_tls.py. These tests serve
nothing, so they run once, not once per request parser.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
import trio
import trustme

from trio_asgi._net.tls import (
    ReloadableContext,
    ServerTLS,
    TLSSettings,
    load_server_tls,
    tls_extension,
)


@pytest.fixture
def http_parser() -> str:
    """Nothing here parses HTTP: run each test once (tests/integration/conftest.py)."""
    return "h11"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_leaf(tmp_path: Path, leaf: trustme.LeafCert) -> tuple[str, str]:
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def server_tls(
    tmp_path: Path, ca: trustme.CA, *, alpn: tuple[str, ...] = ("http/1.1",), **options: str
) -> ServerTLS:
    certfile, keyfile = write_leaf(tmp_path, ca.issue_cert("localhost"))
    if options.get("cert_reqs", "none") != "none":
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        options["ca_certs"] = str(tmp_path / "ca.pem")
    settings = TLSSettings(certfile=certfile, keyfile=keyfile, **options)  # type: ignore[arg-type]
    return load_server_tls(settings, alpn_protocols=alpn)


def client_context(
    ca: trustme.CA,
    *,
    version: ssl.TLSVersion | None = None,
    cert: trustme.LeafCert | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if cert is not None:
        cert.configure_cert(context)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


class Handshake:
    """Both ends of one handshake over a loopback socket pair, and how each ended."""

    def __init__(self, server: ssl.SSLContext, client: ssl.SSLContext) -> None:
        a, b = trio.socket.socketpair()
        self.server = trio.SSLStream(trio.SocketStream(a), server, server_side=True)
        self.client = trio.SSLStream(trio.SocketStream(b), client, server_hostname="localhost")
        self.errors: dict[str, BaseException | None] = {}

    async def run(self) -> Handshake:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._one, "server", self.server)
            nursery.start_soon(self._one, "client", self.client)
        return self

    async def _one(self, name: str, stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            self.errors[name] = exc.__cause__
            await trio.aclose_forcefully(stream)  # so the other end sees EOF, not silence
        else:
            self.errors[name] = None

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.server)
        await trio.aclose_forcefully(self.client)


async def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> Handshake:
    return await Handshake(server, client).run()


async def exchange(done: Handshake) -> bytes:
    """One round trip of application data: in TLS 1.3 a refused client certificate shows here."""
    await done.client.send_all(b"ping")
    return await done.server.receive_some()


# --- versions and ALPN ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "wire", "name"),
    [
        (ssl.TLSVersion.TLSv1_2, 0x0303, "TLSv1.2"),
        (ssl.TLSVersion.TLSv1_3, 0x0304, "TLSv1.3"),
    ],
)
async def test_tls12_and_tls13_are_accepted(
    tmp_path: Path, ca: trustme.CA, version: ssl.TLSVersion, wire: int, name: str
) -> None:
    server = server_tls(tmp_path, ca)
    done = await handshake(server.context, client_context(ca, version=version))
    assert done.errors == {"server": None, "client": None}
    assert done.server.version() == done.client.version() == name
    assert tls_extension(done.server, server)["tls_version"] == wire
    assert await exchange(done) == b"ping"
    await done.aclose()


async def test_tls11_is_refused_by_the_minimum_version(tmp_path: Path, ca: trustme.CA) -> None:
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        client = client_context(ca, version=ssl.TLSVersion.TLSv1_1)
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this OpenSSL offer TLS 1.1 at all
    # The control: a context without the minimum (and at security level 0) accepts it, so the
    # refusal below is the minimum's doing.
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certfile, keyfile = write_leaf(tmp_path, ca.issue_cert("localhost"))
    lax.load_cert_chain(certfile, keyfile)
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        lax.minimum_version = ssl.TLSVersion.TLSv1_1
    lax.set_ciphers("DEFAULT:@SECLEVEL=0")
    control = await handshake(lax, client)
    assert control.errors == {"server": None, "client": None}
    assert control.server.version() == "TLSv1.1"
    await control.aclose()

    done = await handshake(server_tls(tmp_path, ca).context, client)
    server_error = done.errors["server"]
    assert isinstance(server_error, ssl.SSLError)
    assert server_error.reason == "UNSUPPORTED_PROTOCOL"
    assert done.errors["client"] is not None
    await done.aclose()


@pytest.mark.parametrize(
    ("advertised", "offered", "selected"),
    [
        (("http/1.1",), ["h2", "http/1.1"], "http/1.1"),
        (("h2", "http/1.1"), ["h2", "http/1.1"], "h2"),
        (("h2", "http/1.1"), ["http/1.1"], "http/1.1"),
        (("http/1.1",), ["h2"], None),  # no overlap: no ALPN answer, the handshake goes on
    ],
)
async def test_alpn_selects_a_protocol_both_offer(
    tmp_path: Path,
    ca: trustme.CA,
    advertised: tuple[str, ...],
    offered: list[str],
    selected: str | None,
) -> None:
    server = server_tls(tmp_path, ca, alpn=advertised)
    done = await handshake(server.context, client_context(ca, alpn=offered))
    assert done.errors == {"server": None, "client": None}
    assert done.server.selected_alpn_protocol() == selected
    assert done.client.selected_alpn_protocol() == selected
    await done.aclose()


# --- client certificates and the extension --------------------------------------------------


def pem_of(der: bytes | None) -> str:
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_required_client_certificate_signed_by_the_ca_is_accepted(
    tmp_path: Path, ca: trustme.CA, version: ssl.TLSVersion
) -> None:
    server = server_tls(tmp_path, ca, cert_reqs="required")
    client_cert = ca.issue_cert("client@example.org", common_name="Client, Ltd.")
    done = await handshake(server.context, client_context(ca, cert=client_cert, version=version))
    assert done.errors == {"server": None, "client": None}
    assert await exchange(done) == b"ping"
    extension = tls_extension(done.server, server)
    client_view = done.client
    assert extension == {
        "server_cert": pem_of(client_view.getpeercert(binary_form=True)),
        "client_cert_chain": [client_cert.cert_chain_pems[0].bytes().decode()],
        "client_cert_name": (
            f"CN=Client\\, Ltd.,OU={client_cert_ou(client_cert)},O=trustme v{trustme.__version__}"
        ),
        "client_cert_error": None,
        "tls_version": 0x0303 if version is ssl.TLSVersion.TLSv1_2 else 0x0304,
        "cipher_suite": IANA[client_view.cipher()[0]],  # type: ignore[index]
    }
    await done.aclose()


#: IANA ids (RFC 8446 appendix B.4, RFC 5289, RFC 7905) of the suites a default OpenSSL
#: client and server agree on with trustme's ECDSA keys.
IANA = {
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}


def client_cert_ou(cert: trustme.LeafCert) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    parsed = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    value = parsed.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert isinstance(value, str)
    return value


async def test_the_cipher_suite_is_the_negotiated_one(tmp_path: Path, ca: trustme.CA) -> None:
    server = server_tls(tmp_path, ca)
    client = client_context(ca, version=ssl.TLSVersion.TLSv1_2)
    client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    done = await handshake(server.context, client)
    extension = tls_extension(done.server, server)
    assert extension["cipher_suite"] == 0xC02B
    assert extension["client_cert_chain"] == []
    assert extension["client_cert_name"] is None
    await done.aclose()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_a_required_client_certificate_is_refused_without_a_valid_one(
    tmp_path: Path, ca: trustme.CA, version: ssl.TLSVersion, who: str
) -> None:
    server = server_tls(tmp_path, ca, cert_reqs="required")
    cert = None if who == "no certificate" else trustme.CA().issue_cert("mallory@example.org")
    done = await handshake(server.context, client_context(ca, cert=cert, version=version))
    server_error = done.errors["server"]
    assert isinstance(server_error, ssl.SSLError)
    expected = "PEER_DID_NOT_RETURN_A_CERTIFICATE" if cert is None else "CERTIFICATE_VERIFY_FAILED"
    assert server_error.reason == expected
    if done.errors["client"] is None:  # TLS 1.3: the client hears of it after its Finished
        with pytest.raises(trio.BrokenResourceError):
            await exchange(done)
    await done.aclose()


async def test_an_optional_client_certificate_may_be_left_out(
    tmp_path: Path, ca: trustme.CA
) -> None:
    server = server_tls(tmp_path, ca, cert_reqs="optional")
    done = await handshake(server.context, client_context(ca))
    assert done.errors == {"server": None, "client": None}
    extension = tls_extension(done.server, server)
    assert extension["client_cert_chain"] == []
    assert extension["client_cert_name"] is None
    assert extension["client_cert_error"] is None
    await done.aclose()

    client_cert = ca.issue_cert("client@example.org", common_name="Jürgen Weiß")
    done = await handshake(server.context, client_context(ca, cert=client_cert))
    extension = tls_extension(done.server, server)
    assert extension["client_cert_chain"] == [client_cert.cert_chain_pems[0].bytes().decode()]
    assert extension["client_cert_name"] == (
        f"CN=Jürgen Weiß,OU={client_cert_ou(client_cert)},O=trustme v{trustme.__version__}"
    )
    await done.aclose()

    stranger = trustme.CA().issue_cert("mallory@example.org")
    done = await handshake(server.context, client_context(ca, cert=stranger))
    server_error = done.errors["server"]
    assert isinstance(server_error, ssl.SSLError)
    assert server_error.reason == "CERTIFICATE_VERIFY_FAILED"  # sent, so it must verify
    await done.aclose()


async def test_the_extension_is_plain_data(tmp_path: Path, ca: trustme.CA) -> None:
    server = server_tls(tmp_path, ca, cert_reqs="required")
    done = await handshake(
        server.context, client_context(ca, cert=ca.issue_cert("client@example.org"))
    )
    extension = tls_extension(done.server, server)
    assert set(extension) == {
        "server_cert",
        "client_cert_chain",
        "client_cert_name",
        "client_cert_error",
        "tls_version",
        "cipher_suite",
    }
    for value in extension.values():
        assert value is None or type(value) in (str, int, list)
    assert all(type(pem) is str for pem in extension["client_cert_chain"])  # type: ignore[attr-defined]
    await done.aclose()


# --- reload ---------------------------------------------------------------------------------


async def test_a_reload_reaches_new_connections_only(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    first = ca.issue_cert("localhost")
    certfile, keyfile = write_leaf(tmp_path, first)
    reloadable = ReloadableContext(TLSSettings(certfile=certfile, keyfile=keyfile))

    def served_cert(done: Handshake) -> str:
        return pem_of(done.client.getpeercert(binary_form=True))

    old = await handshake(reloadable.current.context, client_context(ca))
    second = ca.issue_cert("localhost")
    write_leaf(tmp_path, second)
    assert reloadable.reload() is True
    new = await handshake(reloadable.current.context, client_context(ca))
    assert served_cert(old) == first.cert_chain_pems[0].bytes().decode()
    assert served_cert(new) == second.cert_chain_pems[0].bytes().decode()
    assert tls_extension(new.server, reloadable.current)["server_cert"] == (served_cert(new))
    # The connection from before the reload still works, with its certificate.
    assert await exchange(old) == b"ping"
    await old.aclose()
    await new.aclose()

    await trio.Path(keyfile).write_text("-----BEGIN PRIVATE KEY-----\ntruncated")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trio_asgi.error"):
        assert reloadable.reload() is False
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    after = await handshake(reloadable.current.context, client_context(ca))
    assert served_cert(after) == second.cert_chain_pems[0].bytes().decode()
    await after.aclose()
