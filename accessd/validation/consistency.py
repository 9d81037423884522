"""Does a card agree with itself? Checks across its CHUID and certificates, no network.

Pure functions, each raising `ValidationError` with its own code: the certificates name the
CHUID's FASC-N and card UUID (a PIV-I certificate may name the UUID alone), a certificate's
subject key identifier is the hash of its own key (else a key pair was substituted), no
card certificate outlives the CHUID, the CHUID's signer is valid for the CHUID's whole
life, and which content-signing purpose a signer is validated for (PIV or PIV-I).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from cryptography import x509

from accessd.validation.errors import ValidationError
from accessd.validation.purpose import CONTENT_SIGNING, CONTENT_SIGNING_PIV_I, Purpose
from drivers.piv import oids
from drivers.piv.chuid import Chuid


@dataclasses.dataclass(frozen=True, slots=True)
class SanIdentifiers:
    """The card identifiers a certificate's subjectAltName carries, as stored."""

    fascn: bytes | None  # the 25 raw bytes, not decoded: a bad one is a mismatch
    card_uuid: str | None  # lowercase 8-4-4-4-12, or the URI's text when not a UUID


def san_identifiers(cert: x509.Certificate) -> SanIdentifiers:
    """The FASC-N otherName and ``urn:uuid:`` URI of ``cert``'s subjectAltName, if any."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SanIdentifiers(None, None)
    except ValueError as exc:
        raise ValidationError("malformed", f"the certificate's extensions: {exc}") from exc
    fascn: bytes | None = None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == oids.SAN_FASCN:
            value = other.value
            # An OCTET STRING holding the 25 bytes; anything else compares unequal.
            fascn = value[2:] if len(value) >= 2 and value[0] == 0x04 else value
    card_uuid: str | None = None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.lower().startswith("urn:uuid:"):
            text = uri[len("urn:uuid:") :]
            try:
                card_uuid = str(uuid.UUID(text))
            except ValueError:
                card_uuid = text
    return SanIdentifiers(fascn, card_uuid)


def check_identifiers(name: str, cert: x509.Certificate, chuid: Chuid) -> None:
    """The certificate names the CHUID's card: each identifier it carries matches.

    A PIV certificate carries the FASC-N (and the UUID since FIPS 201-2); a PIV-I one the
    UUID alone. ``name`` says which certificate, for the message.
    """
    ids = san_identifiers(cert)
    if ids.fascn is None and ids.card_uuid is None:
        raise ValidationError(
            "card_identifier_missing",
            f"the {name} certificate names neither a FASC-N nor a card UUID",
        )
    if ids.fascn is not None and ids.fascn != chuid.fascn.encode():
        raise ValidationError(
            "fascn_mismatch", f"the {name} certificate names another FASC-N than the CHUID"
        )
    if ids.card_uuid is not None and ids.card_uuid != chuid.card_uuid:
        raise ValidationError(
            "uuid_mismatch", f"the {name} certificate names another card UUID than the CHUID"
        )


def check_subject_key_identifier(name: str, cert: x509.Certificate) -> None:
    """The subject key identifier, when present, is derived from the certificate's key.

    RFC 5280 4.2.1.2 gives two methods (SHA-1 of the key, or 0100 and its last 60 bits);
    either is accepted. Another value says the key pair was substituted after issuance.
    """
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise ValidationError("malformed", f"the {name} certificate's SKID: {exc}") from exc
    try:
        expected = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    except (ValueError, TypeError) as exc:
        raise ValidationError("malformed", f"the {name} certificate's key: {exc}") from exc
    short = bytes((0x40 | (expected[12] & 0x0F),)) + expected[13:]
    if ski not in (expected, short):
        raise ValidationError(
            "skid_mismatch",
            f"the {name} certificate's subject key identifier does not match its public key",
        )


def check_within_chuid(name: str, cert: x509.Certificate, chuid: Chuid) -> None:
    """The certificate expires no later than the CHUID (FIPS 201-3, 4.2.1)."""
    ends = cert.not_valid_after_utc.date()
    if ends > chuid.expires:
        raise ValidationError(
            "certificate_outlives_chuid",
            f"the {name} certificate is valid to {ends.isoformat()}, after the CHUID "
            f"expires on {chuid.expires.isoformat()}",
        )


def check_signer_covers_chuid(
    signer: x509.Certificate, chuid: Chuid, signed_at: datetime | None = None
) -> None:
    """The CHUID's content signer is valid for the CHUID's whole life: already when it
    signed (``signed_at``, the CMS signingTime, when there is one) and still when the CHUID
    expires (FIPS 201-3, 4.2.1)."""
    if signed_at is not None and not (
        signer.not_valid_before_utc <= signed_at <= signer.not_valid_after_utc
    ):
        raise ValidationError(
            "content_signer_not_valid_at_signing",
            f"the CHUID was signed on {signed_at.date().isoformat()}, outside its content "
            f"signer's validity ({signer.not_valid_before_utc.date().isoformat()} to "
            f"{signer.not_valid_after_utc.date().isoformat()})",
        )
    ends = signer.not_valid_after_utc.date()
    if ends < chuid.expires:
        raise ValidationError(
            "content_signer_expires_before_chuid",
            f"the CHUID's content signer expires on {ends.isoformat()}, before the CHUID "
            f"({chuid.expires.isoformat()})",
        )


def content_signing_purpose(
    signer: x509.Certificate,
    *,
    piv: Purpose = CONTENT_SIGNING,
    piv_i: Purpose = CONTENT_SIGNING_PIV_I,
) -> Purpose:
    """What to validate a content signer for: ``piv_i`` when it carries the PIV-I
    content-signing EKU and not id-PIV-content-signing, else ``piv``."""
    try:
        ekus = {
            e.dotted_string
            for e in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        }
    except x509.ExtensionNotFound:
        return piv
    except ValueError as exc:
        raise ValidationError("malformed", f"the content signer's EKU: {exc}") from exc
    if oids.EKU_PIVI_CONTENT_SIGNING in ekus and oids.EKU_PIV_CONTENT_SIGNING not in ekus:
        return piv_i
    return piv
