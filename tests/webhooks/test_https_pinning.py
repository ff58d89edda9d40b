"""HTTPS deliveries go to the address the guard checked, with the endpoint's name as SNI, Host header and
certificate name (no second DNS lookup)."""

from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engagement.webhooks.delivery import webhook_request_send
from engagement.webhooks.services import webhook_secret_generate


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Any:
    cert, key = _certificate(tmp_path, "hooks.test")
    seen: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen["host"] = self.headers["Host"]
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def sni(sock: Any, server_name: str | None, ctx: Any) -> None:
        seen["sni"] = server_name

    context.sni_callback = sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert, seen
    server.shutdown()
    server.server_close()


def _send(port: int, host: str) -> Any:
    return webhook_request_send(
        url=f"https://{host}:{port}/in",
        secret=webhook_secret_generate(),
        event_id="evt_test",
        body="{}",
        allow_private=True,
        timeout=5,
        max_response_bytes=1024,
        resolve=lambda name, p: ["127.0.0.1"],  # the DNS answer: the checked address
    )


def test_https_connects_to_the_checked_address_with_the_names_sni_and_certificate(tls_receiver, monkeypatch):
    port, cert, seen = tls_receiver
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate (and only it)
    result = _send(port, "hooks.test")
    assert result.status_code == 204, result.error
    assert seen == {"sni": "hooks.test", "host": f"hooks.test:{port}"}


def test_https_refuses_a_certificate_for_another_name(tls_receiver, monkeypatch):
    port, cert, seen = tls_receiver
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    result = _send(port, "other.test")
    assert result.status_code is None
    assert "certificate" in result.error.lower()
    assert "host" not in seen
