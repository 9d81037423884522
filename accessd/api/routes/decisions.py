"""Access decisions for IP readers, and the stored decision events."""

import base64
import logging
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
from accessd.api.state import AppState
from accessd.auth.permissions import Permission
from accessd.db.outage import is_unavailable
from accessd.decisions.requests import access_request, pin_from, proofs_from
from accessd.errors import InvalidInput, PermissionDenied
from accessd.models import DecisionEvent
from accessd.models.enums import Entity
from accessd.services import audit
from accessd.services.actors import Actor
from policies.decision import Decision
from policies.reasons import for_the_door

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


def public(d: Decision, *, full: bool = True) -> DecisionPublic:
    """The reply; ``full`` only for those who may read the decision log anyway. A door gets
    what it acts on (open, for how long, what to ask for next) and nothing about who the
    card belongs to: no person, credential, companions or trail, and no personal reason."""
    assert d.at is not None
    reason = d.reason.value if full else for_the_door(d.reason)
    return DecisionPublic(
        granted=d.granted,
        reason=reason,
        required=list(d.required),
        unlock_seconds=d.unlock_seconds,
        reader_id=d.reader_id,
        door_id=d.door_id,
        area_id=d.area_id,
        direction=d.direction,
        person_id=d.person_id if full else None,
        credential_id=d.credential_id if full else None,
        violation=d.violation,
        companions=list(d.companions) if full else [],
        trail=list(d.trail) if full else [],
        at=d.at,
    )


async def check_reader(state: AppState, actor: Actor, reader_id: int, what: str) -> None:
    """Refuses (403, audited) a door_reader account asking about a reader it does not serve,
    before anything about the card is looked at."""
    if actor.may_use_reader(reader_id):
        return
    if not state.reader_refusals.allow(actor.operator_id or 0, actor.label):
        # Past the account's budget: refused all the same, counted, not audited again.
        state.metrics.rejected.labels(reason="reader_not_bound_unaudited").inc()
        raise _not_bound(reader_id)
    try:
        async with state.sessions() as session:
            await audit.record(
                session,
                actor=actor.label,
                action=f"{what}.refused",
                entity=Entity.OPERATOR,
                entity_id=actor.operator_id,
                data={"reader_id": reader_id, "why": "reader_not_bound"},
            )
            await session.commit()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # The refusal stands without its audit entry; the log keeps what the audit cannot.
        state.db_health.failed("audit of a refused reader", exc)
        log.warning(
            "%s asked for a %s at reader %d, which it does not serve (not audited: the "
            "database is unavailable)",
            actor.label,
            what,
            reader_id,
        )
    raise _not_bound(reader_id)


def _not_bound(reader_id: int) -> PermissionDenied:
    return PermissionDenied(
        f"this account does not serve reader {reader_id}",
        code="reader_not_bound",
        permission=Permission.DECISIONS_REQUEST.value,
    )


@router.post("", response_model=DecisionPublic)
async def decide(
    body: DecisionRequest,
    state: StateDep,
    actor: Annotated[Actor, Depends(require(Permission.DECISIONS_REQUEST))],
) -> DecisionPublic:
    """Decides one card presentation at a reader, explains why, and stores the decision.

    A door_reader account may ask only at the readers it serves (403 `reader_not_bound`,
    audited, otherwise). The person, credential, companions and trail are in the reply
    only for accounts that may read decisions (decisions:read); a door reader gets them
    empty, and `not_authorized` for a denial that would tell of the person's security
    record (person_inactive, eligibility_suspended, insufficient_clearance, not_read_in).

    With a `proof` the card's challenge-response (and a signed biometric result or PIN
    claim) is verified here, certificate path and revocation included; a proof that fails
    is a stored denial (`authentication_failed`) saying why, not an HTTP error.
    """
    await check_reader(state, actor, body.reader_id, "decision")
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
        pin=pin_from(body.pin.signature if body.pin else None),
        require_proofs=state.settings.require_card_proofs,
    )
    decision = await state.decisions.decide_in_turn(request, source="api")
    return public(decision, full=Permission.DECISIONS_READ in actor.permissions)


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
    (need decisions:request, and a door_reader account must serve the reader).
    """
    needed = Permission.CREDENTIALS_ENROLL if body.reader_id == 0 else Permission.DECISIONS_REQUEST
    if needed not in actor.permissions:
        raise PermissionDenied(
            f"a challenge for reader {body.reader_id} needs the {needed.value} permission",
            permission=needed.value,
        )
    if body.reader_id != 0:
        await check_reader(state, actor, body.reader_id, "challenge")
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
