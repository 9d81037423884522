"""Schedules, holiday calendars, groups and access levels edited one at a time (the API),
as opposed to a whole policy file applied at once. Every change is audited under the
entity names the decision service reloads its policy for, and stages PolicyChanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import Base
from accessd.errors import Conflict, InvalidInput, NotFound
from accessd.events import PolicyChanged, stage
from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Door,
    GroupMember,
    Holiday,
    HolidayCalendar,
    Person,
    PersonGroup,
    Schedule,
)
from accessd.policyfile import times
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404

M = TypeVar("M", bound=Base)

#: Audit entity per model: the names the decision service's audit feed reloads policy for.
ENTITY = {
    Schedule: "schedule",
    HolidayCalendar: "holiday_calendar",
    PersonGroup: "group",
    AccessLevel: "access_level",
}


async def _changed(
    session: AsyncSession,
    actor: Actor,
    model: type[Base],
    key: object,
    action: str,
    data: Mapping[str, Any],
) -> None:
    entity = ENTITY[model]
    await audit.record(
        session,
        actor=actor.label,
        action=f"{entity}.{action}",
        entity=entity,
        entity_id=key,
        data=dict(data),
    )
    stage(session, PolicyChanged(entity))


async def _flush(session: AsyncSession, what: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"{what}: the name is taken or the record is still in use", code="conflict"
        ) from exc


def week_fields(
    week: Mapping[str, Sequence[str]] | None, on_holidays: Sequence[str] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        if week is not None:
            out["week"] = [[list(span) for span in day] for day in times.week_of(week)]
        if on_holidays is not None:
            out["holiday"] = [list(span) for span in times.intervals(on_holidays)]
    except ValueError as exc:
        raise InvalidInput(str(exc), code="bad_schedule") from exc
    return out


async def calendar_ids(session: AsyncSession, names: Sequence[str]) -> list[int]:
    rows = await session.execute(
        select(HolidayCalendar.name, HolidayCalendar.id).where(HolidayCalendar.name.in_(names))
    )
    found = {name: cid for name, cid in rows}
    missing = sorted(set(names) - set(found))
    if missing:
        raise InvalidInput(f"unknown holiday calendars: {', '.join(missing)}", code="bad_reference")
    return [found[n] for n in names]


async def create(
    session: AsyncSession, actor: Actor, model: type[M], fields: Mapping[str, Any]
) -> M:
    obj = model(**fields)
    session.add(obj)
    await _flush(session, ENTITY[model])
    await _changed(session, actor, model, obj.id, "create", fields)  # type: ignore[attr-defined]
    return obj


async def update(
    session: AsyncSession,
    actor: Actor,
    model: type[M],
    key: int,
    changes: Mapping[str, Any],
    version: int | None,
) -> M:
    obj = await get_or_404(session, model, key)
    check_version(obj, version)
    diff = apply_changes(obj, changes)
    if diff:
        await _flush(session, ENTITY[model])
        await _changed(session, actor, model, key, "update", {"changes": diff})
    return obj


async def remove(
    session: AsyncSession, actor: Actor, model: type[M], key: int, version: int | None
) -> None:
    obj = await get_or_404(session, model, key)
    check_version(obj, version)
    await session.delete(obj)
    await _flush(session, ENTITY[model])
    await _changed(session, actor, model, key, "delete", {})


async def set_holidays(
    session: AsyncSession, actor: Actor, calendar_id: int, days: Mapping[date, str]
) -> None:
    await get_or_404(session, HolidayCalendar, calendar_id)
    await session.execute(delete(Holiday).where(Holiday.calendar_id == calendar_id))
    session.add_all(Holiday(calendar_id=calendar_id, day=d, name=n) for d, n in days.items())
    await session.flush()
    await _changed(
        session,
        actor,
        HolidayCalendar,
        calendar_id,
        "days",
        {"days": sorted(d.isoformat() for d in days)},
    )


async def holidays_of(session: AsyncSession, calendar_id: int) -> dict[date, str]:
    await get_or_404(session, HolidayCalendar, calendar_id)
    rows = await session.execute(
        select(Holiday.day, Holiday.name)
        .where(Holiday.calendar_id == calendar_id)
        .order_by(Holiday.day)
    )
    return {day: name for day, name in rows}


async def set_member(
    session: AsyncSession, actor: Actor, group_id: int, person_id: int, member: bool
) -> None:
    await get_or_404(session, PersonGroup, group_id)
    await get_or_404(session, Person, person_id)
    row = await session.get(GroupMember, (group_id, person_id))
    if member == (row is not None):
        return
    if member:
        session.add(GroupMember(group_id=group_id, person_id=person_id))
    else:
        await session.delete(row)
    await session.flush()
    await _changed(
        session,
        actor,
        PersonGroup,
        group_id,
        "add_member" if member else "remove_member",
        {"person_id": person_id},
    )


async def members_of(session: AsyncSession, group_id: int) -> list[int]:
    await get_or_404(session, PersonGroup, group_id)
    rows = await session.scalars(
        select(GroupMember.person_id)
        .where(GroupMember.group_id == group_id)
        .order_by(GroupMember.person_id)
    )
    return list(rows.all())


async def set_level_doors(
    session: AsyncSession, actor: Actor, level_id: int, door_ids: Sequence[int]
) -> None:
    await get_or_404(session, AccessLevel, level_id)
    known = set(await session.scalars(select(Door.id).where(Door.id.in_(door_ids))))
    missing = sorted(set(door_ids) - known)
    if missing:
        raise InvalidInput(f"unknown doors: {', '.join(map(str, missing))}", code="bad_reference")
    await session.execute(delete(AccessLevelDoor).where(AccessLevelDoor.level_id == level_id))
    session.add_all(AccessLevelDoor(level_id=level_id, door_id=d) for d in sorted(known))
    await session.flush()
    await _changed(session, actor, AccessLevel, level_id, "doors", {"door_ids": sorted(known)})


async def doors_of(session: AsyncSession, level_id: int) -> list[int]:
    rows = await session.scalars(
        select(AccessLevelDoor.door_id)
        .where(AccessLevelDoor.level_id == level_id)
        .order_by(AccessLevelDoor.door_id)
    )
    return list(rows.all())


async def grant(
    session: AsyncSession,
    actor: Actor,
    level_id: int,
    *,
    person_id: int | None,
    group_id: int | None,
) -> AccessGrant:
    if (person_id is None) == (group_id is None):
        raise InvalidInput("grant to exactly one of person_id and group_id", code="bad_grant")
    await get_or_404(session, AccessLevel, level_id)
    if person_id is not None:
        await get_or_404(session, Person, person_id)
    if group_id is not None:
        await get_or_404(session, PersonGroup, group_id)
    existing = await session.scalar(
        select(AccessGrant).where(
            AccessGrant.level_id == level_id,
            AccessGrant.person_id.is_(person_id)
            if person_id is None
            else AccessGrant.person_id == person_id,
            AccessGrant.group_id.is_(None)
            if group_id is None
            else AccessGrant.group_id == group_id,
        )
    )
    if existing is not None:
        raise Conflict("that grant exists already", code="duplicate")
    row = AccessGrant(level_id=level_id, person_id=person_id, group_id=group_id)
    session.add(row)
    await session.flush()
    await _changed(
        session,
        actor,
        AccessLevel,
        level_id,
        "grant",
        {"grant_id": row.id, "person_id": person_id, "group_id": group_id},
    )
    return row


def _is(column: Any, value: int | None) -> Any:
    return column.is_(None) if value is None else column == value


async def revoke_grant(session: AsyncSession, actor: Actor, level_id: int, grant_id: int) -> None:
    row = await session.get(AccessGrant, grant_id)
    if row is None or row.level_id != level_id:
        raise NotFound(f"access level {level_id} has no grant {grant_id}")
    await session.delete(row)
    await session.flush()
    await _changed(
        session,
        actor,
        AccessLevel,
        level_id,
        "revoke",
        {"grant_id": grant_id, "person_id": row.person_id, "group_id": row.group_id},
    )


async def grants_of(session: AsyncSession, level_id: int) -> list[AccessGrant]:
    await get_or_404(session, AccessLevel, level_id)
    rows = await session.scalars(
        select(AccessGrant).where(AccessGrant.level_id == level_id).order_by(AccessGrant.id)
    )
    return list(rows.all())
