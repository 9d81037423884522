"""Schedules, holiday calendars, groups and access levels edited one at a time (the API),
as opposed to a whole policy file applied at once: the kinds, written through
`services.crud`, and what hangs off them (holidays, members, a level's doors, grants),
audited and staged the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.errors import Conflict, InvalidInput, NotFound
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
from accessd.models.enums import Entity
from accessd.policyfile import times
from accessd.services.actors import Actor, refuse_self_dealing
from accessd.services.crud import Kind, changed
from accessd.services.records import get_or_404, referenced


async def _check_level(session: AsyncSession, level: AccessLevel) -> None:
    if level.schedule_id is not None:
        await referenced(session, Schedule, level.schedule_id, "schedule_id")


SCHEDULE = Kind(Schedule, Entity.SCHEDULE)
HOLIDAY_CALENDAR = Kind(HolidayCalendar, Entity.HOLIDAY_CALENDAR)
GROUP = Kind(PersonGroup, Entity.GROUP)
ACCESS_LEVEL = Kind(AccessLevel, Entity.ACCESS_LEVEL, _check_level)


async def schedule_fields(session: AsyncSession, given: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule's columns from the API's fields: the week and holiday hours as spans,
    calendars by name as ids. Fields not given stay out (an update leaves them)."""
    renamed = ("week", "on_holidays", "holiday_calendars")
    fields = {k: v for k, v in given.items() if k not in renamed}
    fields |= week_fields(given.get("week"), given.get("on_holidays"))
    if given.get("holiday_calendars") is not None:
        fields["calendar_ids"] = await calendar_ids(session, given["holiday_calendars"])
    return fields


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


async def set_holidays(
    session: AsyncSession, actor: Actor, calendar_id: int, days: Mapping[date, str]
) -> None:
    await get_or_404(session, HolidayCalendar, calendar_id)
    await session.execute(delete(Holiday).where(Holiday.calendar_id == calendar_id))
    session.add_all(Holiday(calendar_id=calendar_id, day=d, name=n) for d, n in days.items())
    await session.flush()
    await changed(
        session,
        actor,
        Entity.HOLIDAY_CALENDAR,
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
    if member:
        refuse_self_dealing(actor, person_id, "add themselves to a group")
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
    await changed(
        session,
        actor,
        Entity.GROUP,
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
    await changed(
        session, actor, Entity.ACCESS_LEVEL, level_id, "doors", {"door_ids": sorted(known)}
    )


async def doors_of(session: AsyncSession, level_id: int) -> list[int]:
    rows = await session.scalars(
        select(AccessLevelDoor.door_id)
        .where(AccessLevelDoor.level_id == level_id)
        .order_by(AccessLevelDoor.door_id)
    )
    return list(rows.all())


def _is(column: Any, value: int | None) -> Any:
    return column.is_(None) if value is None else column == value


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
    refuse_self_dealing(actor, person_id, "grant themselves an access level")
    if person_id is not None:
        await get_or_404(session, Person, person_id)
    if group_id is not None:
        await get_or_404(session, PersonGroup, group_id)
        if actor.person_id is not None:
            own = await session.get(GroupMember, (group_id, actor.person_id))
            if own is not None:
                refuse_self_dealing(
                    actor, actor.person_id, "grant an access level to their own group"
                )
    existing = await session.scalar(
        select(AccessGrant).where(
            AccessGrant.level_id == level_id,
            _is(AccessGrant.person_id, person_id),
            _is(AccessGrant.group_id, group_id),
        )
    )
    if existing is not None:
        raise Conflict("that grant exists already", code="duplicate")
    row = AccessGrant(level_id=level_id, person_id=person_id, group_id=group_id)
    session.add(row)
    await session.flush()
    await changed(
        session,
        actor,
        Entity.ACCESS_LEVEL,
        level_id,
        "grant",
        {"grant_id": row.id, "person_id": person_id, "group_id": group_id},
    )
    return row


async def revoke_grant(session: AsyncSession, actor: Actor, level_id: int, grant_id: int) -> None:
    row = await session.get(AccessGrant, grant_id)
    if row is None or row.level_id != level_id:
        raise NotFound(f"access level {level_id} has no grant {grant_id}")
    await session.delete(row)
    await session.flush()
    await changed(
        session,
        actor,
        Entity.ACCESS_LEVEL,
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
