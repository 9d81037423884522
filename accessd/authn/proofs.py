"""Authentication mechanisms as first-class results: a proof in, verified factors out.

PKI-CAK and PKI-AUTH are challenge-responses: the card signed one of our challenges with
the key of its card-authentication (9E) or PIV-authentication (9A, after the PIN) slot, and
the certificate for that key validates to a trust anchor under the matching FPKI policy.
BIO is a match result signed by the reader's attestation key over the same challenge and
the same certificate, so it is bound to this card at this door at this moment. A PIN the
card verified (VERIFY) during a PKI-CAK presentation counts the same way only: the reader
signs that claim over the challenge and certificate; otherwise only PKI-AUTH, whose 9A key
works only after the PIN, proves it. CHUID is read, never trusted: it identifies a card
and proves nothing (FIPS 201-3 removed it).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from accessd.authn.challenges import ChallengeBook
from accessd.authn.errors import ProofRejected
from accessd.validation.purpose import CARD_AUTH, PIV_AUTH, Purpose
from accessd.validation.result import ValidatedCertificate
from drivers.errors import PivObjectError, SignatureInvalid
from drivers.piv.challenge import verify_challenge
from policies.vocabulary import Mechanism

MAX_CERTIFICATE = 8192
MAX_SIGNATURE = 1024
BIO_DOMAIN = b"accessd/bio/v1\x00"
PIN_DOMAIN = b"accessd/pin/v1\x00"
_BIO_TAIL = struct.Struct(">?H")  # matched, score

#: Mechanisms that count only when a proof establishes them.
PROVABLE = frozenset({Mechanism.PKI_CAK, Mechanism.PKI_AUTH, Mechanism.BIO})
#: What a reader's word alone never establishes where card proofs are required: the
#: provable ones, a PIN (proven by PKI-AUTH or a signed claim) and secure messaging, which
#: this service cannot check at all.
UNPROVEN_CLAIMS = PROVABLE | {Mechanism.PIN, Mechanism.SM_AUTH}

_PURPOSES: dict[Mechanism, Purpose] = {Mechanism.PKI_CAK: CARD_AUTH, Mechanism.PKI_AUTH: PIV_AUTH}


class Validator(Protocol):
    """What the authenticator needs of certificate validation (accessd.validation)."""

    async def validate(self, cert_der: bytes, purpose: Purpose) -> ValidatedCertificate: ...


#: Looks up the attestation key of a reader; None when it has none.
ReaderKeys = Callable[[int], Awaitable[PublicKeyTypes | None]]


@dataclass(frozen=True, slots=True)
class PkiProof:
    """A card's answer to a challenge: PKI-CAK (9E) or PKI-AUTH (9A after the PIN)."""

    mechanism: Mechanism
    challenge: bytes
    certificate: bytes  # DER
    signature: bytes

    def __repr__(self) -> str:
        return f"PkiProof({self.mechanism.value}, {len(self.certificate)} byte certificate)"


@dataclass(frozen=True, slots=True)
class BioProof:
    """A reader's signed statement that the live sample matched the card's template."""

    matched: bool
    score: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class PinProof:
    """A reader's signed statement that the card verified the holder's PIN (VERIFY
    answered 9000) in this presentation; see `pin_message`."""

    signature: bytes


@dataclass(frozen=True, slots=True)
class Authenticated:
    """What the proofs established: the mechanisms, and the certificate that did it."""

    mechanisms: frozenset[Mechanism]
    certificate: ValidatedCertificate

    @property
    def cert_sha256(self) -> str:
        return self.certificate.sha256


def bio_message(challenge: bytes, cert_sha256: str, matched: bool, score: int) -> bytes:
    """The bytes a reader signs to attest a biometric match for one card presentation."""
    return BIO_DOMAIN + challenge + bytes.fromhex(cert_sha256) + _BIO_TAIL.pack(matched, score)


def pin_message(challenge: bytes, cert_sha256: str) -> bytes:
    """The bytes a reader signs to attest that the card verified the PIN for one
    presentation: the challenge and certificate bind it to this card, door and moment."""
    return PIN_DOMAIN + challenge + bytes.fromhex(cert_sha256)


class AttestationKeyUnsupported(Exception):
    """A reader attestation key of a kind that cannot sign (X25519, DH, ...)."""


def _verify_attestation(key: PublicKeyTypes, signature: bytes, message: bytes) -> None:
    """Raises InvalidSignature, or AttestationKeyUnsupported for a key kind we do not take.

    Only these two are translated by the caller: anything else (a TypeError, say) is a bug
    and must surface as one, not as a stored ``bio_bad_signature`` denial.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise AttestationKeyUnsupported(
            f"attestation keys of type {type(key).__name__} are not accepted"
        )


class Authenticator:
    """Checks proofs: the challenge once, the signature, then the certificate (cached)."""

    def __init__(self, challenges: ChallengeBook, validator: Validator, reader_keys: ReaderKeys):
        self.challenges = challenges
        self._validator = validator
        self._reader_keys = reader_keys
        #: rejections by code, for the metrics endpoint and the operators' eyes.
        self.rejected: dict[str, int] = {}
        self.accepted = 0

    @property
    def validator(self) -> Validator:
        """The certificate validation the proofs rest on (enrollment reuses it)."""
        return self._validator

    def _reject(self, code: str, detail: str) -> ProofRejected:
        self.rejected[code] = self.rejected.get(code, 0) + 1
        return ProofRejected(detail, code=code)

    async def verify(
        self,
        reader_id: int,
        proof: PkiProof,
        bio: BioProof | None = None,
        pin: PinProof | None = None,
    ) -> Authenticated:
        """The mechanisms ``proof`` (and ``bio``, ``pin``) establish at ``reader_id``, or
        raise an AuthnError (challenge or proof) or ValidationError saying exactly why not."""
        purpose = _PURPOSES.get(proof.mechanism)
        if purpose is None:
            raise self._reject(
                "mechanism_not_provable", f"{proof.mechanism.value} is not a challenge-response"
            )
        if not 0 < len(proof.certificate) <= MAX_CERTIFICATE:
            raise self._reject("certificate_malformed", "certificate missing or too long")
        if not 0 < len(proof.signature) <= MAX_SIGNATURE:
            raise self._reject("signature_malformed", "signature missing or too long")
        # Consumed before anything else is checked: a failed attempt cannot be retried with
        # the same challenge either.
        self.challenges.consume(proof.challenge, reader_id)
        try:
            cert = x509.load_der_x509_certificate(proof.certificate)
        except ValueError as exc:
            raise self._reject("certificate_malformed", "the certificate is not DER") from exc
        try:
            verify_challenge(cert, proof.challenge, proof.signature)
        except (SignatureInvalid, PivObjectError) as exc:
            # PivObjectError: a key no PIV card holds (RSA-1024, Ed25519...), which cannot
            # have answered the challenge either. Other errors are bugs, not denials.
            raise self._reject(
                "bad_signature", f"the card's signature over the challenge does not verify: {exc}"
            ) from exc
        # Only now the expensive part; a warm certificate is a cache hit.
        validated = await self._validator.validate(proof.certificate, purpose)
        mechanisms = {proof.mechanism}
        if pin is not None:
            await self._check_pin(reader_id, proof.challenge, validated.sha256, pin)
            mechanisms.add(Mechanism.PIN)
        if bio is not None:
            await self._check_bio(reader_id, proof.challenge, validated.sha256, bio)
            mechanisms.add(Mechanism.BIO)
        self.accepted += 1
        return Authenticated(frozenset(mechanisms), validated)

    async def _check_pin(
        self, reader_id: int, challenge: bytes, sha256: str, pin: PinProof
    ) -> None:
        key = await self._reader_keys(reader_id)
        if key is None:
            raise self._reject(
                "pin_unattested", f"reader {reader_id} has no attestation key to sign a PIN claim"
            )
        if not 0 < len(pin.signature) <= MAX_SIGNATURE:
            raise self._reject("pin_malformed", "PIN claim signature missing or too long")
        try:
            _verify_attestation(key, pin.signature, pin_message(challenge, sha256))
        except (InvalidSignature, AttestationKeyUnsupported) as exc:
            raise self._reject(
                "pin_bad_signature", "the PIN claim is not signed by the reader's key"
            ) from exc

    async def _check_bio(
        self, reader_id: int, challenge: bytes, sha256: str, bio: BioProof
    ) -> None:
        key = await self._reader_keys(reader_id)
        if key is None:
            raise self._reject(
                "bio_unattested", f"reader {reader_id} has no attestation key for biometrics"
            )
        if not 0 <= bio.score <= 0xFFFF:
            raise self._reject("bio_malformed", "biometric score out of range")
        message = bio_message(challenge, sha256, bio.matched, bio.score)
        try:
            _verify_attestation(key, bio.signature, message)
        except (InvalidSignature, AttestationKeyUnsupported) as exc:
            raise self._reject(
                "bio_bad_signature", "the biometric result is not signed by the reader's key"
            ) from exc
        if not bio.matched:
            raise self._reject("bio_no_match", "the biometric sample did not match")


def certificate_sha256(der: bytes) -> str:
    """The fingerprint credentials are bound by (lowercase hex)."""
    return hashlib.sha256(der).hexdigest()
