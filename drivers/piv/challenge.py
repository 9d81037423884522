"""Challenge-response with a PIV key: what the card signs for a nonce, and how to check it.

The input is chosen so that `cryptography`'s ordinary verify accepts the card's answer:
RSA-2048 signs PKCS#1 v1.5 over SHA-256 of the nonce (the card gets the whole padded
block), P-256 signs ECDSA with SHA-256 and P-384 ECDSA with SHA-384 (the card gets the
digest). Pure functions apart from `sign_challenge`, which talks to the card.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from drivers.errors import SignatureInvalid
from drivers.piv.cardedge import PivCard, algorithm_for
from drivers.piv.objects import Algorithm

RSA_BLOCK = 256
# DER prefix of DigestInfo { sha256, NULL, OCTET STRING (32) } (RFC 8017 9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def pkcs1v15_block(digest_info: bytes, size: int = RSA_BLOCK) -> bytes:
    """EMSA-PKCS1-v1_5 encoding: 00 01 FF..FF 00 DigestInfo, ``size`` bytes long."""
    fill = size - len(digest_info) - 3
    if fill < 8:
        raise ValueError("DigestInfo too long for the RSA block")
    return b"\x00\x01" + b"\xff" * fill + b"\x00" + digest_info


def signature_input(algorithm: Algorithm, nonce: bytes) -> bytes:
    """The bytes the card receives in 81 to sign ``nonce`` with ``algorithm``."""
    if algorithm is Algorithm.RSA2048:
        return pkcs1v15_block(SHA256_DIGEST_INFO + hashlib.sha256(nonce).digest())
    if algorithm is Algorithm.P256:
        return hashlib.sha256(nonce).digest()
    if algorithm is Algorithm.P384:
        return hashlib.sha384(nonce).digest()
    raise ValueError(f"unsupported algorithm {algorithm!r}")


async def sign_challenge(card: PivCard, slot: str, cert: x509.Certificate, nonce: bytes) -> bytes:
    """Have the key in ``slot`` sign ``nonce``; the algorithm follows ``cert``'s public key."""
    algorithm = algorithm_for(cert)
    return await card.authenticate(slot, algorithm, signature_input(algorithm, nonce))


def verify_challenge(cert: x509.Certificate, nonce: bytes, signature: bytes) -> None:
    """Check a `sign_challenge` answer against ``cert``; raises `SignatureInvalid`."""
    public = cert.public_key()
    algorithm = algorithm_for(cert)
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, nonce, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            hash_ = hashes.SHA256() if algorithm is Algorithm.P256 else hashes.SHA384()
            public.verify(signature, nonce, ec.ECDSA(hash_))
    except InvalidSignature as exc:
        raise SignatureInvalid(f"challenge signature does not verify ({algorithm.name})") from exc
