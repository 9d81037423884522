from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Public
from policies.vocabulary import Direction, Mechanism

IdValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CredentialId(Input):
    """How the reader identified the card."""

    kind: Literal["fasc_n", "card_uuid", "cert_sha256", "badge_number"]
    value: IdValue


class DecisionRequest(Input):
    reader_id: Id
    credential: CredentialId
    #: What the reader verified: pki_cak, pki_auth (card PIN verified), sm_auth, pin, bio, …
    evidence: list[Mechanism] = Field(default_factory=list, max_length=8)
    #: When the card was presented; now when omitted (panels replaying buffered reads set it).
    at: datetime | None = None


class DecisionPublic(Public):
    granted: bool
    reason: str
    required: list[str]
    unlock_seconds: int
    reader_id: int | None
    door_id: int | None
    area_id: int | None
    direction: Direction
    person_id: int | None
    credential_id: int | None
    violation: str | None
    companions: list[int]
    trail: list[str]
    at: datetime


class DecisionEventPublic(Public):
    id: int
    at: datetime
    reader_id: int | None
    door_id: int | None
    person_id: int | None
    credential_id: int | None
    granted: bool
    reason: str
    required: list[str]
    violation: str | None
    trail: list[str]
    source: str
