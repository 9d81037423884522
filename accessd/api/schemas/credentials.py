from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import field_validator

from accessd.api.schemas.common import Id, Input, Public, Reason, Update, VersionedPublic
from accessd.fields import BadgeNumber, CardUUID, FascN, Sha256
from accessd.models.enums import CredentialKind, CredentialState


class CertificateRef(Input):
    #: PIV key reference: 9A PIV Authentication, 9C signature, 9D key management, 9E card auth.
    slot: Literal["9A", "9C", "9D", "9E"]
    sha256: Sha256

    @field_validator("slot", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


class CredentialCreate(Input):
    person_id: Id
    kind: CredentialKind
    valid_from: date
    valid_until: date
    reason: Reason = ""
    fasc_n: FascN | None = None
    card_uuid: CardUUID | None = None
    badge_number: BadgeNumber | None = None
    certificates: list[CertificateRef] = []


class CredentialUpdate(Update):
    nullable = frozenset({"fasc_n", "card_uuid", "badge_number"})

    fasc_n: FascN | None = None
    card_uuid: CardUUID | None = None
    badge_number: BadgeNumber | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    certificates: list[CertificateRef] | None = None


class TransitionRequest(Input):
    reason: Reason = ""


class CertificatePublic(Public):
    slot: str
    sha256: str


class CredentialPublic(VersionedPublic):
    person_id: int
    kind: CredentialKind
    state: CredentialState
    fasc_n: str | None
    card_uuid: str | None
    badge_number: str | None
    valid_from: date
    valid_until: date
    sponsor_id: int | None
    registrar_id: int | None
    adjudicator_id: int | None
    issuer_id: int | None
    certificates: list[CertificatePublic]
    allowed_actions: list[str] = []


class TransitionPublic(Public):
    id: int
    action: str
    from_state: CredentialState | None
    to_state: CredentialState
    actor_id: int | None
    at: datetime
    reason: str
