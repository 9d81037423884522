"""What a panel can check of a card's proof on its own: the signature, not the path."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from drivers.errors import DriverError
from drivers.mqtt.messages import PkiProof
from drivers.piv.challenge import verify_challenge


def verified_certificate(proof: PkiProof) -> str | None:
    """SHA-256 (hex) of the proof's certificate when its key signed the proof's challenge,
    else None. No path validation or revocation: offline the cache stands in for both."""
    try:
        der = base64.b64decode(proof.certificate, validate=True)
        cert = x509.load_der_x509_certificate(der)
        verify_challenge(
            cert,
            base64.b64decode(proof.challenge, validate=True),
            base64.b64decode(proof.signature, validate=True),
        )
    except (binascii.Error, ValueError, DriverError):
        return None
    return cert.fingerprint(hashes.SHA256()).hex()
