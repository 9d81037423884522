"""Which of RFC 6960's responder checks an OCSP answer failed, in words an operator can act on.

pyhanko-certvalidator refuses a delegated responder whose certificate it cannot validate
with one message for every cause ("response signing certificate could not be validated").
An operator told only that cannot tell a responder whose certificate lapsed (renew it) from
one that was revoked (a key compromise) or forged. `diagnose` looks at the responder
certificates the answer carries, in the order a relying party checks them, and names the
first that fails: validity at the moment of the decision, the CA's signature on it, the
OCSP-signing purpose, revocation by a CRL already held, and its signature on the answer.
It only explains a refusal the library already made; it never accepts anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from accessd.validation.revocation import (
    CrlRecord,
    OcspRecord,
    issuer_key,
    responder_certificates,
)


def diagnose(
    answer: OcspRecord,
    issuer: asn1_x509.Certificate | None,
    crls: Sequence[CrlRecord],
    now: datetime,
) -> str | None:
    """The first responder check that fails, as a phrase, or None when none is found
    (the answer is then signed by the CA itself, or fails in a way not covered here)."""
    ca = _crypto(issuer) if issuer is not None else None
    for carried in responder_certificates(answer.response):
        responder = _crypto(carried)
        if responder is None or (ca is not None and responder.subject == ca.subject):
            continue
        name = responder.subject.rfc4514_string()
        if now < responder.not_valid_before_utc:
            start = _day(responder.not_valid_before_utc)
            return f"the responder certificate {name} is not valid before {start}"
        if now > responder.not_valid_after_utc:
            return (
                f"the responder certificate {name} expired on {_day(responder.not_valid_after_utc)}"
            )
        if ca is not None:
            try:
                responder.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                return (
                    f"the responder certificate {name} does not carry a valid signature of "
                    f"its CA {ca.subject.rfc4514_string()}"
                )
        if not _signs_ocsp(responder):
            return f"the responder certificate {name} is not authorized for OCSP signing"
        revoked_by = _revoked_by(carried, crls)
        if revoked_by is not None:
            return f"the responder certificate {name} is revoked (CRL from {revoked_by})"
    return None


def _crypto(cert: asn1_x509.Certificate) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(cert.dump())
    except ValueError:
        return None


def _signs_ocsp(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _revoked_by(cert: asn1_x509.Certificate, crls: Sequence[CrlRecord]) -> str | None:
    issuer = issuer_key(cert.issuer)
    for record in crls:
        if record.issuer == issuer and cert.serial_number in record.revoked:
            return record.source
    return None


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%SZ")
