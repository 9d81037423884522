"""Reading people into (and out of) compartmented programs, which SCIF areas may require."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import utcnow
from accessd.errors import Conflict, NotFound
from accessd.events import PersonChanged, stage
from accessd.models import Person, ProgramReadIn
from accessd.models.enums import Entity
from accessd.services import audit
from accessd.services.actors import Actor, refuse_self_dealing
from accessd.services.records import get_or_404


async def programs_of(session: AsyncSession, person_id: int) -> list[ProgramReadIn]:
    await get_or_404(session, Person, person_id)
    rows = await session.scalars(
        select(ProgramReadIn)
        .where(ProgramReadIn.person_id == person_id)
        .order_by(ProgramReadIn.program)
    )
    return list(rows.all())


async def read_in(
    session: AsyncSession, actor: Actor, person_id: int, program: str, reason: str
) -> ProgramReadIn:
    refuse_self_dealing(actor, person_id, "read themselves into a program")
    await get_or_404(session, Person, person_id)
    if await session.get(ProgramReadIn, (person_id, program)) is not None:
        raise Conflict(f"person {person_id} is already read into {program}", code="duplicate")
    row = ProgramReadIn(person_id=person_id, program=program, read_in_on=utcnow().date())
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="program.read_in",
        entity=Entity.PERSON,
        entity_id=person_id,
        data={"program": program, "reason": reason},
    )
    stage(session, PersonChanged(person_id, ("programs",)))
    return row


async def read_out(
    session: AsyncSession, actor: Actor, person_id: int, program: str, reason: str
) -> None:
    row = await session.get(ProgramReadIn, (person_id, program))
    if row is None:
        raise NotFound(f"person {person_id} is not read into {program}")
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="program.read_out",
        entity=Entity.PERSON,
        entity_id=person_id,
        data={"program": program, "reason": reason},
    )
    stage(session, PersonChanged(person_id, ("programs",)))
