"""Certificates for the lab: the lab CA (service hosts), the censor CA (TLS MITM) and the
self-signed OpenVPN certificates (pinned by fingerprint, recipes/1_openvpn)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def service_certs(out: Path, domains: list[str], quic_domains: list[str] = ()) -> dict[str, Path]:
    """Lab CA + one leaf for every domain; the CA is what probes get with --ca-file.

    QUIC gets one small certificate per name: the server may send only 3x what the client sent
    before the address is validated, and the all-names leaf would overflow that (an extra
    round of timeouts in every handshake)."""
    ca = trustme.CA(organization_name="netvigil lab CA")
    leaf = ca.issue_cert(*domains, common_name=domains[0])
    paths = {"ca": out / "lab-ca.pem", "cert": out / "services.pem", "key": out / "services.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    paths["cert"].write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    censor = trustme.CA(organization_name="netvigil lab censor CA")
    forged = censor.issue_cert(*domains, common_name=domains[0])
    paths["mitm_cert"] = out / "censor-mitm.pem"
    paths["mitm_key"] = out / "censor-mitm.key"
    paths["mitm_cert"].write_bytes(b"".join(b.bytes() for b in forged.cert_chain_pems))
    forged.private_key_pem.write_to_path(str(paths["mitm_key"]))
    censor.cert_pem.write_to_path(str(out / "censor-ca.pem"))
    for d in quic_domains:
        one = ca.issue_cert(d)
        one.private_key_pem.write_to_path(str(out / f"quic-{d}.key"))
        (out / f"quic-{d}.pem").write_bytes(b"".join(b.bytes() for b in one.cert_chain_pems))
    return paths


def self_signed(out: Path, name: str) -> tuple[Path, Path, str]:
    """EC self-signed cert + key (ten years: a lab's pinned pair, helper/certs.py makes it);
    returns (cert, key, sha256 fingerprint as AA:BB:..)."""
    from netvigil.helper.certs import self_signed as make

    cert_path, key_path = make(out, name, days=3650, files=(f"{name}.crt", f"{name}.key"))
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return cert_path, key_path, ":".join(digest[i:i + 2] for i in range(0, 64, 2))
