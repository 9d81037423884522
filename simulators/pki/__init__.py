"""A test PKI for PIV cards: certificate authorities, CMS-signed card objects, CRL/OCSP server."""

from simulators.pki.authority import (
    Algorithm,
    CardMaterial,
    Issued,
    PrivateKey,
    TestPki,
    Variant,
    new_key,
)
from simulators.pki.server import PkiServer, free_port

__all__ = [
    "Algorithm",
    "CardMaterial",
    "Issued",
    "PkiServer",
    "PrivateKey",
    "TestPki",
    "Variant",
    "free_port",
    "new_key",
]
