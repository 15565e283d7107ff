"""One self-signed certificate maker (helper/certs.py) for the helper and the lab's pinned
OpenVPN pair: each pair loads as a TLS server's chain (key matches certificate), and the lab's
fingerprint is the one of the certificate it wrote."""

from __future__ import annotations

import hashlib
import ssl
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from netvigil.helper.certs import COMMON_NAME, self_signed
from netvigil.lab.pki import self_signed as vpn_pair


def _loads(cert, key) -> x509.Certificate:
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)  # raises on a mismatch
    assert key.stat().st_mode & 0o077 == 0
    return x509.load_pem_x509_certificate(cert.read_bytes())


def test_the_helpers_pair(tmp_path):
    cert, key = self_signed(tmp_path)
    c = _loads(cert, key)
    assert (cert.name, key.name) == ("cert.pem", "key.pem")
    assert c.subject.rfc4514_string() == f"CN={COMMON_NAME}"
    assert c.not_valid_after_utc - c.not_valid_before_utc == timedelta(days=366)


def test_the_lab_vpn_pair_is_pinned_by_its_own_fingerprint(tmp_path):
    cert, key, fingerprint = vpn_pair(tmp_path, "vpn-server")
    c = _loads(cert, key)
    assert (cert.name, key.name) == ("vpn-server.crt", "vpn-server.key")
    assert c.subject.rfc4514_string() == "CN=vpn-server"
    assert c.not_valid_after_utc - c.not_valid_before_utc == timedelta(days=3651)
    der = c.public_bytes(serialization.Encoding.DER)
    assert fingerprint.replace(":", "") == hashlib.sha256(der).hexdigest().upper() and len(fingerprint) == 95
    other = vpn_pair(tmp_path, "vpn-client")[2]
    assert other != fingerprint  # a fresh key per name
