"""The signed biometric objects (facial image, fingerprints): integrity checks, no matching.

`verify_biometric` parses the CBEFF record and verifies its signature block (detached,
over header and BDB); the signer is returned for the caller to validate as a content
signer. `check_biometric` is pure: the record's validity period against the date and the
CHUID's expiry, and its FASC-N and card UUID (header and signed attributes) against the
CHUID. A card whose CHUID FASC-N has agency code 9999 is a non-federal (PIV-I) card whose
FASC-N identifies nothing (FIPS 201-3, SP 800-73-4); its records are matched by the card
UUID alone.

A replacement card (lost or damaged: FIPS 201-3 2.9.4.1) keeps the credential's FASC-N
but for its Individual Credential Issue digit, which goes up by one, and keeps the
biometric records captured at the earlier issue, whose headers name that issue. GSA's
golden card 46 ICI_9 is such a card: its records say ICI 8, and their signed card UUID is
the ICI 8 card's. A record of a federal card therefore matches when its FASC-N is the
CHUID's, or the same credential at an earlier issue, and then its UUID names that earlier
card and is not compared; any other difference (another credential, person or agency, a
later issue, a FASC-N that does not decode) is a mismatch. A PIV-I card has no FASC-N to
go by, so its records must name its own UUID.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, get_args

from asn1crypto import core
from cryptography import x509

from accessd.validation.cms import verify_signed_data
from accessd.validation.errors import Code, ValidationError
from drivers.errors import MalformedData
from drivers.piv import oids
from drivers.piv.cbeff import CbeffRecord
from drivers.piv.chuid import Chuid
from drivers.piv.fascn import Fascn

Kind = Literal["facial_image", "fingerprints"]
KINDS: tuple[Kind, ...] = get_args(Kind)
_NAMES: dict[Kind, str] = {"facial_image": "facial image", "fingerprints": "fingerprints"}
NON_FEDERAL_AGENCY = "9999"


@dataclass(frozen=True, slots=True)
class VerifiedBiometric:
    """A biometric record whose signature verified; `signer` still needs validating."""

    kind: Kind
    record: CbeffRecord
    signer: x509.Certificate
    signed_fascn: bytes | None  # the pivFASC-N signed attribute
    signed_uuid: bytes | None  # the entryUUID signed attribute (16 bytes on a good card)

    @property
    def name(self) -> str:
        return _NAMES[self.kind]


def _code(kind: Kind, check: str) -> Code:
    code = f"{kind}_{check}"
    assert code in get_args(Code), code
    return code  # type: ignore[return-value]


def verify_biometric(
    kind: Kind, content: bytes, *, known_signers: Sequence[x509.Certificate] = ()
) -> VerifiedBiometric:
    """The verified record from its container content (inside 53).

    Refusals: ``<kind>_malformed``, ``<kind>_signature``. The signer certificate may be
    left out of the CMS when it is the CHUID's signer: pass that in ``known_signers``.
    """
    name = _NAMES[kind]
    try:
        record = CbeffRecord.decode_content(content)
    except MalformedData as exc:
        raise ValidationError(_code(kind, "malformed"), f"{name}: {exc}") from exc
    signed = verify_signed_data(
        record.signature,
        content_types={oids.CONTENT_BIOMETRIC},
        detached=record.signed_content,
        known_signers=known_signers,
        code=_code(kind, "signature"),
        what=f"{name} signature",
    )
    try:
        fascn = _octets(signed.attributes.get(oids.ATTR_PIV_FASCN))
        card_uuid = _octets(signed.attributes.get(oids.ATTR_ENTRY_UUID))
    except ValueError as exc:
        raise ValidationError(
            _code(kind, "malformed"), f"{name}: a signed attribute does not parse ({exc})"
        ) from exc
    return VerifiedBiometric(kind, record, signed.signer, fascn, card_uuid)


def _octets(values: tuple[bytes, ...] | None) -> bytes | None:
    if not values:
        return None
    return bytes(core.OctetString.load(values[0], strict=True).native)


def check_biometric(bio: VerifiedBiometric, chuid: Chuid, *, today: date) -> None:
    """The record is valid today and until the CHUID expires, and names the CHUID's card."""
    check_biometric_identifiers(bio, chuid)
    check_biometric_validity(bio, chuid, today=today)


def check_biometric_validity(bio: VerifiedBiometric, chuid: Chuid, *, today: date) -> None:
    """``<kind>_expired``, ``<kind>_not_yet_valid``, ``<kind>_expires_before_chuid``."""
    header = bio.record.header
    ends, starts = header.not_after.date(), header.not_before.date()
    if ends < today:
        raise ValidationError(
            _code(bio.kind, "expired"), f"the {bio.name} record expired on {ends.isoformat()}"
        )
    if starts > today:
        raise ValidationError(
            _code(bio.kind, "not_yet_valid"),
            f"the {bio.name} record is not valid before {starts.isoformat()}",
        )
    if ends < chuid.expires:
        raise ValidationError(
            _code(bio.kind, "expires_before_chuid"),
            f"the {bio.name} record expires on {ends.isoformat()}, before the CHUID "
            f"({chuid.expires.isoformat()})",
        )


def _earlier_issue(raw: bytes, card: Fascn) -> bool:
    """``raw`` is ``card``'s credential at an earlier issue (see the module docstring)."""
    try:
        record = Fascn.decode(raw)
    except MalformedData:
        return False
    issue, card_issue = record.individual_credential_issue, card.individual_credential_issue
    return issue < card_issue and replace(record, individual_credential_issue=card_issue) == card


def check_biometric_identifiers(bio: VerifiedBiometric, chuid: Chuid) -> None:
    """``<kind>_fascn_mismatch``, ``<kind>_uuid_mismatch``: header FASC-N, signed FASC-N
    and signed card UUID against the CHUID (UUID only, and required, on a PIV-I card)."""
    non_federal = chuid.fascn.agency_code == NON_FEDERAL_AGENCY
    earlier_card = False
    if not non_federal:
        fascn = chuid.fascn.encode()
        for where, value in (("header", bio.record.header.fascn), ("signed", bio.signed_fascn)):
            if value is None or value == fascn:
                continue
            if not _earlier_issue(value, chuid.fascn):
                raise ValidationError(
                    _code(bio.kind, "fascn_mismatch"),
                    f"the {bio.name} record's {where} FASC-N is not the CHUID's",
                )
            earlier_card = True
        if earlier_card:
            # Carried over from the card this one replaced: its UUID is that card's.
            return
    card_uuid = uuid.UUID(chuid.card_uuid).bytes
    # GSA's card builder writes an empty entryUUID when it was given no UUID: that names
    # no card, the same as no attribute at all.
    if not bio.signed_uuid:
        if non_federal:
            raise ValidationError(
                _code(bio.kind, "uuid_mismatch"),
                f"the {bio.name} record of a PIV-I card names no card UUID",
            )
        return
    if bio.signed_uuid != card_uuid:
        raise ValidationError(
            _code(bio.kind, "uuid_mismatch"),
            f"the {bio.name} record's signed card UUID is not the CHUID's",
        )
