"""The outcome of a successful validation, and the PIV identifiers read from the certificate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from accessd.validation.errors import ValidationError
from drivers.errors import MalformedData
from drivers.piv import oids
from drivers.piv.fascn import Fascn

RevocationSource = Literal["crl", "ocsp"]


@dataclass(frozen=True, slots=True)
class ValidatedCertificate:
    """A certificate that chained to a trust anchor and passed every check for `purpose`.

    `reusable_until` is the earliest of: any certificate in the path expiring, the
    revocation data used going past its freshness limit, and the cache's own maximum age.
    """

    purpose: str
    subject: str
    issuer: str
    serial: int
    not_after: datetime
    sha256: str  # lowercase hex of the DER certificate
    fascn: Fascn | None  # its repr is redacted; store `fascn.hex()`, never log it
    card_uuid: str | None
    public_key: CertificatePublicKeyTypes
    revocation_source: RevocationSource
    validated_at: datetime
    reusable_until: datetime
    certificate: x509.Certificate


def piv_identifiers(cert: x509.Certificate) -> tuple[Fascn | None, str | None]:
    """The FASC-N (SAN otherName) and card UUID (SAN URI ``urn:uuid:``), when present."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None, None
    fascn: Fascn | None = None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == oids.SAN_FASCN:
            fascn = _decode_fascn(other.value)
    card_uuid: str | None = None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.lower().startswith("urn:uuid:"):
            try:
                card_uuid = str(uuid.UUID(uri[len("urn:uuid:") :]))
            except ValueError as exc:
                raise ValidationError("malformed", "the SAN card UUID is not a UUID") from exc
    return fascn, card_uuid


def _decode_fascn(value: bytes) -> Fascn:
    # The otherName value is the DER of an OCTET STRING holding the 25 FASC-N bytes.
    if len(value) < 2 or value[0] != 0x04 or value[1] != len(value) - 2:
        raise ValidationError("malformed", "the SAN FASC-N is not a short OCTET STRING")
    try:
        return Fascn.decode(value[2:])
    except MalformedData as exc:
        # The message names a character index only, never the digits.
        raise ValidationError("malformed", f"the SAN FASC-N does not decode: {exc}") from exc
