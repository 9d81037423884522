"""Access decisions for IP readers, and the stored decision events."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdQuery, SessionDep, StateDep, require
from accessd.api.schemas.common import Page
from accessd.api.schemas.decisions import DecisionEventPublic, DecisionPublic, DecisionRequest
from accessd.auth.permissions import Permission
from accessd.errors import InvalidInput
from accessd.models import DecisionEvent
from accessd.services.actors import Actor
from policies.decision import AccessRequest, Decision

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
    """Decides one card presentation at a reader, explains why, and stores the decision."""
    at = body.at or datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidInput("at must carry a timezone offset", code="naive_time")
    request = AccessRequest(
        body.reader_id,
        at.astimezone(UTC),
        body.credential.kind,
        body.credential.value.lower()
        if body.credential.kind != "badge_number"
        else body.credential.value,
        frozenset(body.evidence),
    )
    return public(state.decisions.decide(request, source="api"))


@router.get("", response_model=Page[DecisionEventPublic])
async def list_decisions(
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.DECISIONS_READ))],
    after: AfterQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    door_id: IdQuery = None,
    person_id: IdQuery = None,
    granted: bool | None = None,
) -> Page[DecisionEventPublic]:
    stmt = select(DecisionEvent).where(DecisionEvent.id > after)
    if door_id is not None:
        stmt = stmt.where(DecisionEvent.door_id == door_id)
    if person_id is not None:
        stmt = stmt.where(DecisionEvent.person_id == person_id)
    if granted is not None:
        stmt = stmt.where(DecisionEvent.granted.is_(granted))
    rows = list((await session.scalars(stmt.order_by(DecisionEvent.id).limit(limit))).all())
    return Page(
        items=[DecisionEventPublic.model_validate(r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )
