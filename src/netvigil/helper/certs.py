"""The helper's certificate: the operator's, or a self-signed one made at start.

Clients never verify it (the censor decides on the ClientHello, whatever the certificate),
so a fresh self-signed one per process is enough; it is written to a private temporary
directory because both ssl and aioquic load certificates from files.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from netvigil.errors import UsageError

COMMON_NAME = "netvigil-helper"


def self_signed(directory: Path, name: str = COMMON_NAME, *, days: int = 365,
                files: tuple[str, str] = ("cert.pem", "key.pem")) -> tuple[Path, Path]:
    """Write a self-signed EC P-256 certificate for `name` (its CN and DNS name), valid `days`,
    and its key (0600) into `directory` as `files`: the helper's, and the lab VPN's pinned ones."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / files[0], directory / files[1]
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class CertificateFiles:
    """The (cert, key) paths to serve; a self-signed pair lives as long as this object."""

    def __init__(self, cert: Path | None = None, key: Path | None = None):
        self._tmp: tempfile.TemporaryDirectory | None = None
        if (cert is None) != (key is None):
            raise UsageError("--cert and --key go together", hint="give both, or neither for a self-signed one")
        if cert is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="netvigil-helper-")
            cert, key = self_signed(Path(self._tmp.name))
        for path in (cert, key):
            if not Path(path).is_file():
                raise UsageError("cannot read certificate file", where=str(path))
        self.cert, self.key = Path(cert), Path(key)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
