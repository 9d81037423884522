"""Access decisions for IP readers, and the stored decision events."""

import base64
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdQuery, SessionDep, StateDep, require, require_any
from accessd.api.paging import LimitQuery, rows_after, shown
from accessd.api.schemas.common import Page
from accessd.api.schemas.decisions import (
    ChallengePublic,
    ChallengeRequest,
    DecisionEventPublic,
    DecisionPublic,
    DecisionRequest,
)
from accessd.auth.permissions import Permission
from accessd.decisions.requests import access_request, proofs_from
from accessd.errors import InvalidInput, PermissionDenied
from accessd.models import DecisionEvent
from accessd.services.actors import Actor
from policies.decision import Decision

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


def public(d: Decision) -> DecisionPublic:
    assert d.at is not None
    return DecisionPublic(
        granted=d.granted,
        reason=d.reason.value,
        required=list(d.required),
        unlock_seconds=d.unlock_seconds,
        reader_id=d.reader_id,
        door_id=d.door_id,
        area_id=d.area_id,
        direction=d.direction,
        person_id=d.person_id,
        credential_id=d.credential_id,
        violation=d.violation,
        companions=list(d.companions),
        trail=list(d.trail),
        at=d.at,
    )


@router.post("", response_model=DecisionPublic)
async def decide(
    body: DecisionRequest,
    state: StateDep,
    _: Annotated[Actor, Depends(require(Permission.DECISIONS_REQUEST))],
) -> DecisionPublic:
    """Decides one card presentation at a reader, explains why, and stores the decision.

    With a `proof` the card's challenge-response (and a signed biometric result) is
    verified here, certificate path and revocation included; a proof that fails is a stored
    denial (`authentication_failed`) saying why, not an HTTP error.
    """
    at = body.at or datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidInput("at must carry a timezone offset", code="naive_time")
    p, b = body.proof, body.bio
    proof, bio = proofs_from(
        (p.mechanism, p.challenge, p.certificate, p.signature) if p else None,
        (b.matched, b.score, b.signature) if b else None,
    )
    request = await access_request(
        state.authn,
        reader_id=body.reader_id,
        at=at,
        credential=(body.credential.kind, body.credential.value) if body.credential else None,
        evidence=body.evidence,
        proof=proof,
        bio=bio,
        require_proofs=state.settings.require_card_proofs,
    )
    return public(await state.decisions.decide_in_turn(request, source="api"))


challenges_router = APIRouter(prefix="/v1/challenges", tags=["decisions"])


@challenges_router.post("", response_model=ChallengePublic, status_code=201)
async def new_challenge(
    body: ChallengeRequest,
    state: StateDep,
    actor: Annotated[
        Actor,
        Depends(require_any(Permission.DECISIONS_REQUEST, Permission.CREDENTIALS_ENROLL)),
    ],
) -> ChallengePublic:
    """A random, single-use, short-lived challenge for a card at ``reader_id`` to sign.

    Reader 0 is an enrollment station (needs credentials:enroll); others are door readers
    (need decisions:request).
    """
    needed = Permission.CREDENTIALS_ENROLL if body.reader_id == 0 else Permission.DECISIONS_REQUEST
    if needed not in actor.permissions:
        raise PermissionDenied(
            f"a challenge for reader {body.reader_id} needs the {needed.value} permission",
            permission=needed.value,
        )
    challenge = state.authn.challenges.issue(body.reader_id)
    return ChallengePublic(
        challenge=base64.b64encode(challenge.value).decode("ascii"),
        reader_id=challenge.reader_id,
        expires_at=datetime.fromtimestamp(challenge.expires_at, UTC),
    )


@router.get("", response_model=Page[DecisionEventPublic])
async def list_decisions(
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.DECISIONS_READ))],
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
    door_id: IdQuery = None,
    person_id: IdQuery = None,
    granted: bool | None = None,
) -> Page[DecisionEventPublic]:
    stmt = select(DecisionEvent)
    if door_id is not None:
        stmt = stmt.where(DecisionEvent.door_id == door_id)
    if person_id is not None:
        stmt = stmt.where(DecisionEvent.person_id == person_id)
    if granted is not None:
        stmt = stmt.where(DecisionEvent.granted.is_(granted))
    page = await rows_after(session, stmt, DecisionEvent.id, after=after, limit=limit)
    return shown(page, DecisionEventPublic.model_validate)
