"""The CHUID issuer signature (SP 800-73-4): CMS SignedData over the CHUID, content detached.

`verify_chuid_signature` checks the CMS alone (synchronous, no network); `validate_chuid`
adds validation of the signer certificate for PIV content signing.
`verify_signed_chuid` checks the signature over the CHUID as read, before its fields are
decoded, so a tampered field is refused as a bad signature rather than as bad data.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from accessd.validation.cms import SignedContent, verify_signed_data
from accessd.validation.purpose import CONTENT_SIGNING
from accessd.validation.result import ValidatedCertificate
from accessd.validation.validator import CertificateValidator
from drivers.piv import oids
from drivers.piv.chuid import Chuid, SignedChuid


def verify_chuid_signature(chuid: Chuid) -> x509.Certificate:
    """The signer certificate of a CHUID whose CMS signature verifies over `chuid.tbs`.

    Raises `ValidationError` with code ``chuid_signature`` for anything else: not a
    SignedData, wrong eContentType, attached content, a digest that does not match the
    CHUID, a signature that does not verify, or no signer certificate in the CMS.
    """
    return _verify(chuid.tbs, chuid.signature)


def verify_signed_chuid(signed: SignedChuid) -> x509.Certificate:
    """Like `verify_chuid_signature`, from the CHUID as read (`drivers.piv.chuid.split_signed`)."""
    return verify_signed_chuid_content(signed).signer


def verify_signed_chuid_content(signed: SignedChuid) -> SignedContent:
    """`verify_signed_chuid` with the whole verified CMS: signer and signed attributes."""
    return _verified(signed.tbs, signed.signature)


def _verify(tbs: bytes, signature: bytes) -> x509.Certificate:
    return _verified(tbs, signature).signer


def _verified(tbs: bytes, signature: bytes) -> SignedContent:
    return verify_signed_data(
        signature,
        content_types={oids.CONTENT_CHUID},
        detached=tbs,
        code="chuid_signature",
        what="CHUID signature",
    )


async def validate_chuid(chuid: Chuid, validator: CertificateValidator) -> ValidatedCertificate:
    """Verifies the CHUID signature, then validates its signer for PIV content signing."""
    signer = verify_chuid_signature(chuid)
    return await validator.validate(signer.public_bytes(Encoding.DER), CONTENT_SIGNING)
