from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Public
from accessd.api.schemas.credentials import CredentialPublic
from accessd.api.schemas.decisions import Certificate, Challenge, Signature

Slot = Literal["9a", "9c", "9d", "9e"]
Chuid = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=11000)]
#: Another data object's content as GET DATA returned it inside 53 (7E for discovery),
#: base64; a facial image is the largest, up to about 12 KB.
CardObject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=24000)]


class StationProofIn(Input):
    """The card's answer to a challenge the station got from POST /v1/challenges (reader 0)."""

    mechanism: Literal["pki_cak", "pki_auth"]
    challenge: Challenge
    signature: Signature


OptionalObject = Literal["discovery", "ccc", "facial_image", "fingerprints", "printed_information"]


class CardReadingIn(Input):
    """What the station read: the 53-wrapped CHUID and the certificates, base64, and the
    other objects it read; the security object is required unless the site says not."""

    chuid: Chuid
    certificates: dict[Slot, Certificate] = Field(max_length=4)
    proofs: list[StationProofIn] = Field(min_length=1, max_length=2)
    security_object: CardObject | None = None
    discovery: CardObject | None = None
    ccc: CardObject | None = None
    facial_image: CardObject | None = None
    fingerprints: CardObject | None = None
    printed_information: CardObject | None = None
    #: The objects the station asked the card for and the card said it has not (6A82).
    #: One its security object lists is then a refusal; an object simply left out of the
    #: request is only not checked.
    absent: list[OptionalObject] = Field(default_factory=list, max_length=5)


class EnrollmentRequest(Input):
    person_id: Id
    #: The credential awaiting this card; may be left out when the person has exactly one.
    credential_id: Id | None = None
    card: CardReadingIn
    #: Inspect only: validate and show who the card is; nothing is written.
    dry_run: bool = False


class CertificateCheck(Public):
    slot: str
    subject: str
    issuer: str
    not_after: date
    sha256: str
    revocation_source: str


class CardIdentityPublic(Public):
    holder: str
    #: Log-safe: agency, system and the last four credential digits.
    fasc_n: str
    card_uuid: str
    expires: date
    valid_until: date
    issuer: str
    chuid_signer: str
    proven: list[str]
    certificates: list[CertificateCheck]
    #: The signed objects checked besides the CHUID (security object, biometric records).
    checked: list[str] = []


class EnrollmentPublic(Public):
    identity: CardIdentityPublic
    #: The credential the card is bound to (already, for a dry run of a registered card).
    credential: CredentialPublic | None
    dry_run: bool
