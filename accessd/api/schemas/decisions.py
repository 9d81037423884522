from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from accessd.api.schemas.common import Id, Input, Moment, Public
from policies.vocabulary import Direction, Mechanism

IdValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_B64 = r"^[A-Za-z0-9+/]*={0,2}$"
#: Standard base64 (RFC 4648 section 4), padded; decoded by the route.
Challenge = Annotated[str, StringConstraints(pattern=_B64, min_length=4, max_length=128)]
Certificate = Annotated[str, StringConstraints(pattern=_B64, min_length=4, max_length=11000)]
Signature = Annotated[str, StringConstraints(pattern=_B64, min_length=4, max_length=1400)]


class CredentialId(Input):
    """How the reader identified the card."""

    kind: Literal["fasc_n", "card_uuid", "cert_sha256", "badge_number"]
    value: IdValue


class PkiProofIn(Input):
    """The card's answer to a challenge from POST /v1/challenges."""

    mechanism: Literal["pki_cak", "pki_auth"]
    challenge: Challenge
    #: The DER certificate of the key that signed (9E for pki_cak, 9A for pki_auth).
    certificate: Certificate
    signature: Signature


class BioProofIn(Input):
    """A biometric match result signed by the reader's attestation key over the same
    challenge and certificate (see accessd.authn.proofs.bio_message)."""

    matched: bool
    score: Annotated[int, Field(ge=0, le=65535)]
    signature: Signature


class PinProofIn(Input):
    """The reader's claim that the card verified the holder's PIN in this presentation,
    signed by the reader's attestation key over the proof's challenge and certificate (see
    accessd.authn.proofs.pin_message). Unsigned, a PIN counts only through pki_auth."""

    signature: Signature


class DecisionRequest(Input):
    reader_id: Id
    #: How the reader identified the card; may be left out when `proof` carries the
    #: certificate (which then identifies it), must match it otherwise.
    credential: CredentialId | None = None
    evidence: list[Mechanism] = Field(
        default_factory=list,
        max_length=8,
        description="What the reader says it verified. With require_card_proofs (the "
        "default) only chuid and badge are taken on its word: pki_cak, pki_auth and bio "
        "come from `proof` and `bio`, a PIN from pki_auth or a signed `pin`.",
    )
    proof: PkiProofIn | None = None
    bio: BioProofIn | None = None
    pin: PinProofIn | None = None

    @model_validator(mode="after")
    def _identified(self) -> DecisionRequest:
        if self.credential is None and self.proof is None:
            raise ValueError("give the credential, a proof, or both")
        if self.bio is not None and self.proof is None:
            raise ValueError("a biometric result is bound to a proof's challenge: give both")
        if self.pin is not None and self.proof is None:
            raise ValueError("a PIN claim is bound to a proof's challenge: give both")
        return self

    #: When the card was presented; now when omitted (panels replaying buffered reads set it).
    at: Moment | None = None


_FOR_READERS_OF_DECISIONS = " (decisions:read); null or empty for a door reader"


class DecisionPublic(Public):
    granted: bool
    reason: Annotated[
        str,
        Field(
            description="Why; a door reader gets not_authorized for person_inactive, "
            "eligibility_suspended, insufficient_clearance and not_read_in"
        ),
    ]
    required: list[str]
    unlock_seconds: int
    reader_id: int | None
    door_id: int | None
    area_id: int | None
    direction: Direction
    person_id: Annotated[
        int | None, Field(description="The card's holder" + _FOR_READERS_OF_DECISIONS)
    ]
    credential_id: Annotated[int | None, Field(description="The card" + _FOR_READERS_OF_DECISIONS)]
    violation: str | None
    companions: Annotated[
        list[int], Field(description="Who passes along" + _FOR_READERS_OF_DECISIONS)
    ]
    trail: Annotated[
        list[str], Field(description="The rules that decided" + _FOR_READERS_OF_DECISIONS)
    ]
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


class ChallengeRequest(Input):
    #: The reader that will present the card's answer (0: an enrollment station).
    reader_id: Annotated[int, Field(ge=0, le=2**31 - 1)]


class ChallengePublic(Public):
    challenge: str  # base64
    reader_id: int
    expires_at: datetime
