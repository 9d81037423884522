"""Why a certificate or a card's signed object was refused: one exception, a stable `code`.

AccessdError
└── ValidationError          422  the certificate or signed card object is not acceptable
    certificates:     untrusted, expired, not_yet_valid, revoked, revocation_unknown,
                      ocsp_responder, policy, bad_signature, algorithm, usage, malformed
    CHUID:            chuid_signature, content_signer_expires_before_chuid,
                      content_signer_not_valid_at_signing
    card consistency: fascn_mismatch, uuid_mismatch, card_identifier_missing,
                      skid_mismatch, certificate_outlives_chuid
    security object:  security_object_missing, security_object_malformed,
                      security_object_signature, security_object_hash,
                      security_object_group_missing
    biometrics:       facial_image_… and fingerprints_… with _malformed, _signature,
                      _expired, _not_yet_valid, _expires_before_chuid, _fascn_mismatch,
                      _uuid_mismatch

The message says exactly why, in words an officer can act on; `code` is what callers
branch on. Library exceptions (pyhanko-certvalidator, cryptography, asn1crypto) are
translated into this one type at the package boundary, chained with ``from exc``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from accessd.errors import AccessdError

Code = Literal[
    "untrusted",  # no path to a configured trust anchor, wrong issuer, path constraints
    "expired",
    "not_yet_valid",
    "revoked",
    "revocation_unknown",  # no CRL or OCSP answer fresh enough: fail closed
    "ocsp_responder",  # the OCSP answer's responder fails RFC 6960's checks
    "policy",  # the path does not carry the certificate policy the purpose requires
    "bad_signature",
    "algorithm",  # a signature or key algorithm the validator refuses as weak
    "usage",  # key usage or extended key usage wrong for the purpose
    "malformed",  # not a DER certificate, or a PIV extension that does not decode
    "chuid_signature",  # the CHUID issuer signature does not verify
    "content_signer_expires_before_chuid",  # the CHUID's signer ends before the CHUID
    "content_signer_not_valid_at_signing",  # the CHUID was signed outside its signer's validity
    "fascn_mismatch",  # a certificate names another FASC-N than the CHUID
    "uuid_mismatch",  # a certificate names another card UUID than the CHUID
    "card_identifier_missing",  # a certificate names neither FASC-N nor card UUID
    "skid_mismatch",  # subject key identifier is not the hash of the certificate's key
    "certificate_outlives_chuid",  # a card certificate expires after the CHUID
    "security_object_missing",
    "security_object_malformed",
    "security_object_signature",
    "security_object_hash",  # a data group's hash does not match the object read
    "security_object_group_missing",  # a data group it lists is not on the card
    "facial_image_malformed",
    "facial_image_signature",
    "facial_image_expired",
    "facial_image_not_yet_valid",
    "facial_image_expires_before_chuid",
    "facial_image_fascn_mismatch",
    "facial_image_uuid_mismatch",
    "fingerprints_malformed",
    "fingerprints_signature",
    "fingerprints_expired",
    "fingerprints_not_yet_valid",
    "fingerprints_expires_before_chuid",
    "fingerprints_fascn_mismatch",
    "fingerprints_uuid_mismatch",
]


class ValidationError(AccessdError):
    status = 422
    title = "Certificate not accepted"
    code: str = "untrusted"

    def __init__(
        self,
        code: Code,
        detail: str,
        *,
        revoked_at: datetime | None = None,
        revocation_reason: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, code=code, **extra)
        self.revoked_at = revoked_at
        self.revocation_reason = revocation_reason
