"""The Authenticator translates only what means "this proof is no good" into a denial code;
a bug underneath (a TypeError, say) surfaces as a bug, not as a stored bad_signature."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from accessd.authn import proofs
from accessd.authn.challenges import ChallengeBook
from accessd.authn.errors import ProofRejected
from accessd.authn.proofs import Authenticator, BioProof, PkiProof
from policies.vocabulary import Mechanism

READER = 7


class Certificate:
    """A self-signed certificate for ``private`` (the validator below never chains it)."""

    def __init__(self, private: Any, algorithm: hashes.HashAlgorithm | None) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")])
        now = dt.datetime.now(dt.UTC)
        self.der = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(private, algorithm)
            .public_bytes(serialization.Encoding.DER)
        )


class ValidatorThatPasses:
    """Stands in for the PKI: these tests stop before or after certificate validation."""

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self, der: bytes, purpose: Any) -> Any:
        self.calls += 1

        class Validated:
            sha256 = "00" * 32

        return Validated()


def authenticator(key: PublicKeyTypes | None = None) -> tuple[Authenticator, ChallengeBook]:
    book = ChallengeBook()

    async def reader_keys(reader_id: int) -> PublicKeyTypes | None:
        return key

    return Authenticator(book, ValidatorThatPasses(), reader_keys), book  # type: ignore[arg-type]


def cak(book: ChallengeBook, cert: bytes, signature: bytes) -> PkiProof:
    return PkiProof(Mechanism.PKI_CAK, book.issue(READER).value, cert, signature)


async def test_a_bug_under_the_signature_check_is_raised_not_stored_as_a_denial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise TypeError("a programming error")

    monkeypatch.setattr(proofs, "verify_challenge", broken)
    auth, book = authenticator()
    card = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TypeError, match="programming error"):
        await auth.verify(READER, cak(book, Certificate(card, hashes.SHA256()).der, b"sig"))
    assert auth.rejected == {}


async def test_a_key_no_piv_card_holds_is_a_bad_signature() -> None:
    auth, book = authenticator()
    card = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(ProofRejected) as refused:
        await auth.verify(READER, cak(book, Certificate(card, None).der, b"s" * 64))
    assert refused.value.code == "bad_signature"


async def test_a_reader_key_that_cannot_sign_is_a_bad_biometric_signature() -> None:
    auth, book = authenticator(key=x25519.X25519PrivateKey.generate().public_key())
    card = ec.generate_private_key(ec.SECP256R1())
    proof = cak(book, Certificate(card, hashes.SHA256()).der, b"")
    proof = PkiProof(
        proof.mechanism,
        proof.challenge,
        proof.certificate,
        card.sign(proof.challenge, ec.ECDSA(hashes.SHA256())),
    )
    with pytest.raises(ProofRejected) as refused:
        await auth.verify(READER, proof, BioProof(True, 900, b"s" * 64))
    assert refused.value.code == "bio_bad_signature"
