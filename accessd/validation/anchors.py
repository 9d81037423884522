"""Trust anchors and intermediate certificates from PEM or DER files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography import x509

from accessd.validation.errors import ValidationError


def load_certificates(paths: Iterable[Path]) -> list[x509.Certificate]:
    """Every certificate in the files: PEM bundles (any number each) or single DER files."""
    certs: list[x509.Certificate] = []
    for path in paths:
        data = path.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                certs.extend(x509.load_pem_x509_certificates(data))
            else:
                certs.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise ValidationError("malformed", f"{path}: not a PEM or DER certificate") from exc
    return certs
