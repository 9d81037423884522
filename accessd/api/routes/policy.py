"""Door policy questions and controls: what-if queries and threat levels."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from accessd.api.deps import IdPath, IdQuery, SessionDep, StateDep, require
from accessd.api.schemas.common import Moment
from accessd.api.schemas.policy import (
    Forgiveness,
    ThreatLevelPublic,
    ThreatLevelSet,
    WhatIf,
    WhatIfAnswer,
)
from accessd.auth.permissions import Permission
from accessd.errors import InvalidInput, NotFound
from accessd.models.enums import Entity
from accessd.policyfile import compliance, impact
from accessd.policyfile import loader as policy_loader
from accessd.services import audit
from accessd.services.actors import Actor, refuse_self_dealing
from accessd.services.threat import set_threat_level
from policies import whatif
from policies.vocabulary import ThreatLevel

router = APIRouter(prefix="/v1/policy", tags=["policy"])
threat_router = APIRouter(prefix="/v1/facilities", tags=["facilities"])
Reading = Annotated[Actor, Depends(require(Permission.FACILITIES_READ))]


def _when(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidInput("at must carry a timezone offset", code="naive_time")
    return at.astimezone(UTC)


def _answers(found: list[whatif.Answer]) -> list[WhatIfAnswer]:
    return [
        WhatIfAnswer(
            person_id=a.person_id,
            door_id=a.door_id,
            allowed=a.allowed,
            granted=a.decision.granted,
            reason=a.decision.reason.value,
            required=list(a.decision.required),
            trail=list(a.decision.trail),
        )
        for a in found
    ]


@router.get("/doors/{door_id}/who", response_model=WhatIf)
async def who_can_open(
    door_id: IdPath,
    state: StateDep,
    _: Reading,
    at: Moment | None = None,
    threat: ThreatLevel | None = None,
    allowed_only: Annotated[bool, Query(description="only those who would be let in")] = True,
) -> WhatIf:
    """Who can open the door at `at` (now by default), under `threat` (the current level by
    default), with full evidence; two-person and escort rules show as still required."""
    snap = state.decisions.snapshot
    if door_id not in snap.doors:
        raise NotFound(f"door {door_id} does not exist")
    when = _when(at)
    found = whatif.who_can_open(snap, door_id, when, threat)
    if allowed_only:
        found = [a for a in found if a.allowed]
    return WhatIf(at=when, threat=threat, answers=_answers(found))


@router.get("/people/{person_id}/where", response_model=WhatIf)
async def where_can_go(
    person_id: IdPath,
    state: StateDep,
    _: Reading,
    at: Moment | None = None,
    threat: ThreatLevel | None = None,
    facility_id: IdQuery = None,
    allowed_only: Annotated[bool, Query(description="only the doors that would open")] = True,
) -> WhatIf:
    """Every door the person would get through at `at`, and why (or why not)."""
    snap = state.decisions.snapshot
    if person_id not in snap.people:
        raise NotFound(f"person {person_id} does not exist")
    when = _when(at)
    found = whatif.where_can_go(snap, person_id, when, threat, facility_id)
    if allowed_only:
        found = [a for a in found if a.allowed]
    return WhatIf(at=when, threat=threat, answers=_answers(found))


@router.get("/compliance")
async def compliance_report(
    session: SessionDep,
    _: Reading,
    facility: Annotated[str | None, Query(max_length=32, description="facility code")] = None,
) -> list[dict[str, Any]]:
    """Every door's demanded factors against its area class (SP 800-116), its accepted
    mechanisms and readers, with a verdict per door."""
    reports = await compliance.report(session, facility=facility)
    if facility is not None and not reports:
        raise NotFound(f"facility {facility!r} does not exist")
    return [r.as_dict() for r in reports]


@router.post(
    "/impact",
    openapi_extra={
        "requestBody": {
            "content": {"application/yaml": {"schema": {"type": "string"}}},
            "required": True,
        }
    },
)
async def access_impact(
    request: Request,
    state: StateDep,
    actor: Annotated[Actor, Depends(require(Permission.FACILITIES_WRITE))],
) -> dict[str, Any]:
    """Before applying a policy file (the YAML as the body): which people would gain or lose
    access to which areas. Nothing is applied."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the policy file must be UTF-8 text", code="bad_encoding") from None
    # Parsing a large file is CPU for a while: off the event loop, so the doors' decisions
    # and the other requests go on meanwhile.
    policy = await asyncio.to_thread(policy_loader.parse, text, "request")
    if policy.errors:
        raise InvalidInput(
            f"the policy file has {len(policy.errors)} error(s)",
            code="policy_invalid",
            findings=[str(f) for f in policy.errors[:100]],
        )
    # The preview applies and rolls back its own transaction: a session of its own.
    async with state.sessions() as session:
        found = await impact.impact(session, policy, actor=actor.label)
    return found.as_dict()


@router.post("/people/{person_id}/forgive", status_code=204)
async def forgive_anti_passback(
    person_id: IdPath,
    body: Forgiveness,
    state: StateDep,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.PRESENCE_WRITE))],
) -> None:
    """Operator forgiveness: forgets where the person is, so anti-passback lets them through
    once more (a door held for someone, a badge not presented on the way out)."""
    snap = state.decisions.snapshot
    refuse_self_dealing(actor, person_id, "forgive their own anti-passback")
    if person_id not in snap.people:
        raise NotFound(f"person {person_id} does not exist")
    known = person_id in state.decisions.presence.location
    # Every instance forgets it too (the change is shared: accessd.decisions.presence).
    state.decisions.forgive(person_id, datetime.now(UTC))
    await audit.record(
        session,
        actor=actor.label,
        action="presence.forgive",
        entity=Entity.PRESENCE,
        entity_id=person_id,
        data={"reason": body.reason, "was_known": known},
    )
    await session.commit()


@threat_router.put("/{facility_id}/threat-level", response_model=ThreatLevelPublic)
async def put_threat_level(
    facility_id: IdPath,
    body: ThreatLevelSet,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.THREAT_SET))],
) -> ThreatLevelPublic:
    """Sets the facility's threat level; it governs the very next decision."""
    facility = await set_threat_level(session, actor, facility_id, body.level, body.reason)
    await session.commit()
    return ThreatLevelPublic(
        facility_id=facility.id, level=ThreatLevel(facility.threat_level), version=facility.version
    )
