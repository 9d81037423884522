"""Why a certificate was refused: one exception with a machine-readable `code`.

AccessdError
└── ValidationError          422  the certificate (or CHUID signature) is not acceptable
    codes: untrusted, expired, not_yet_valid, revoked, revocation_unknown, policy,
           bad_signature, algorithm, usage, malformed, chuid_signature

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
    "policy",  # the path does not carry the certificate policy the purpose requires
    "bad_signature",
    "algorithm",  # a signature or key algorithm the validator refuses as weak
    "usage",  # key usage or extended key usage wrong for the purpose
    "malformed",  # not a DER certificate, or a PIV extension that does not decode
    "chuid_signature",  # the CHUID issuer signature does not verify
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
