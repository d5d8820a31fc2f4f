"""Tier 1: the TLS fields of ``Config``: what is refused before any file is read, with a
message that says what to fix. (Reading the files is ``_net/tls.py``'s, tested in
tests/proto/test_tls.py; serving them end to end in tests/integration/test_tls.py.)"""

from __future__ import annotations

import importlib.util
import ssl
from typing import Any

import pytest

from trio_asgi import Config, ConfigError


def test_tls_is_off_by_default() -> None:
    assert not Config().tls_enabled
    assert Config(ssl_certfile="cert.pem").tls_enabled
    assert Config(ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)).tls_enabled


def test_a_config_never_reads_the_files() -> None:
    # serve() reads them when it starts: a Config is a plain value.
    config = Config(ssl_certfile="/nonexistent/cert.pem", ssl_keyfile="/nonexistent/key.pem")
    assert config.ssl_certfile == "/nonexistent/cert.pem"


def test_the_key_password_is_not_in_the_repr() -> None:
    config = Config(ssl_certfile="cert.pem", ssl_keyfile_password="hunter2")
    assert "hunter2" not in repr(config)
    assert config.ssl_keyfile_password == "hunter2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ssl_certfile": ""}, "ssl_certfile must be None or a non-empty str, not ''"),
        ({"ssl_certfile": 3}, "ssl_certfile must be None or a non-empty str, not 3"),
        (
            {"ssl_certfile": "c.pem", "ssl_keyfile": b"k.pem"},
            "ssl_keyfile must be None or a non-empty str, not b'k.pem'",
        ),
        (
            {"ssl_certfile": "c.pem", "ssl_cert_reqs": "yes"},
            "ssl_cert_reqs must be one of 'none', 'optional', 'required', not 'yes'",
        ),
        ({"ssl_keyfile": "k.pem"}, "ssl_keyfile needs ssl_certfile (the server certificate)"),
        ({"ssl_ca_certs": "ca.pem"}, "ssl_ca_certs needs ssl_certfile"),
        ({"ssl_cert_reqs": "required"}, "ssl_cert_reqs needs ssl_certfile"),
        (
            {"ssl_certfile": "c.pem", "ssl_cert_reqs": "optional"},
            "ssl_cert_reqs='optional' needs ssl_ca_certs: the PEM file of the CAs",
        ),
        ({"ssl_context": "context"}, "ssl_context must be an ssl.SSLContext, not 'context'"),
        (
            {"ssl_context": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)},
            "ssl_context is a client context (PROTOCOL_TLS_CLIENT)",
        ),
        (
            {
                "ssl_context": ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
                "ssl_certfile": "c.pem",
                "ssl_cert_reqs": "required",
            },
            "ssl_context is used as it is: set ssl_certfile, ssl_cert_reqs on it instead",
        ),
        (
            {"ssl_certfile": "c.pem", "tls_handshake_timeout": -1},
            "tls_handshake_timeout",
        ),
    ],
)
def test_refused_with_what_to_fix(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config(**settings)
    assert message in str(caught.value)


def test_client_certificates_need_the_tls_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        "trio_asgi._config.network.find_spec",
        lambda name: None if name == "cryptography" else real(name),
    )
    hint = r"pip install '\.\[tls\]' in a checkout of trio-asgi, else pip install cryptography"
    with pytest.raises(ConfigError, match=hint):
        Config(ssl_certfile="c.pem", ssl_ca_certs="ca.pem", ssl_cert_reqs="required")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    with pytest.raises(ConfigError, match=r"ssl_context\.verify_mode asks for client certificates"):
        Config(ssl_context=context)
    # Without client certificates, cryptography is not needed.
    assert Config(ssl_certfile="c.pem", ssl_ca_certs="ca.pem").ssl_cert_reqs == "none"
    assert Config(ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)).tls_enabled


def test_client_certificates_with_the_extra_installed() -> None:
    config = Config(ssl_certfile="c.pem", ssl_ca_certs="ca.pem", ssl_cert_reqs="optional")
    assert config.ssl_cert_reqs == "optional"
