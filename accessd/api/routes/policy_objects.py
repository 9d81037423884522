"""Schedules, holiday calendars, groups and access levels through the API. A policy file
applied later replaces what is edited here: a deployment keeps one source of truth.

Each is a `Resource` like the site records; what hangs off them (a calendar's days, a
group's members, a level's doors and grants) has routes of its own below."""

from typing import Any

from fastapi import status
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.api.deps import IdPath, SessionDep
from accessd.api.resource import Reading, Resource, Writing, public_of
from accessd.api.schemas import policy_objects as s
from accessd.api.schemas.common import Update
from accessd.models import AccessLevel, HolidayCalendar, Schedule
from accessd.policyfile import times
from accessd.services import crud
from accessd.services import policy_objects as po
from accessd.services.actors import Actor
from accessd.services.records import get_or_404

_TAGS = ("policy",)


class Schedules(Resource[Schedule, s.ScheduleCreate, s.ScheduleUpdate, s.SchedulePublic]):
    async def create(self, session: AsyncSession, actor: Actor, body: s.ScheduleCreate) -> Schedule:
        fields = await po.schedule_fields(session, body.model_dump())
        return await crud.create(session, actor, self.kind, fields)

    async def update(
        self,
        session: AsyncSession,
        actor: Actor,
        key: int,
        body: s.ScheduleUpdate,
        version: int | None,
    ) -> Schedule:
        fields = await po.schedule_fields(session, body.changes())
        return await crud.update(session, actor, self.kind, key, fields, version)

    async def present(self, session: AsyncSession, row: Schedule) -> s.SchedulePublic:
        week = tuple(tuple((a, b) for a, b in day) for day in row.week)
        return public_of(
            s.SchedulePublic,
            row,
            week=times.render_week(week),
            on_holidays=[times.format_range((a, b)) for a, b in row.holiday],
            holiday_calendar_ids=list(row.calendar_ids),
        )


class Calendars(Resource[HolidayCalendar, s.CalendarCreate, Update, s.CalendarPublic]):
    async def create(
        self, session: AsyncSession, actor: Actor, body: s.CalendarCreate
    ) -> HolidayCalendar:
        row = await crud.create(session, actor, self.kind, {"name": body.name})
        await po.set_holidays(session, actor, row.id, body.days)
        return row

    async def present(self, session: AsyncSession, row: HolidayCalendar) -> s.CalendarPublic:
        return public_of(s.CalendarPublic, row, days=await po.holidays_of(session, row.id))


class Levels(Resource[AccessLevel, s.LevelCreate, s.LevelUpdate, s.LevelPublic]):
    async def create(self, session: AsyncSession, actor: Actor, body: s.LevelCreate) -> AccessLevel:
        fields = body.model_dump(exclude={"door_ids"})
        row = await crud.create(session, actor, self.kind, fields)
        await po.set_level_doors(session, actor, row.id, body.door_ids)
        return row

    async def update(
        self,
        session: AsyncSession,
        actor: Actor,
        key: int,
        body: s.LevelUpdate,
        version: int | None,
    ) -> AccessLevel:
        changes = {k: v for k, v in body.changes().items() if k != "door_ids"}
        row = await crud.update(session, actor, self.kind, key, changes, version)
        if body.door_ids is not None:
            await po.set_level_doors(session, actor, key, body.door_ids)
        return row

    async def present(self, session: AsyncSession, row: AccessLevel) -> s.LevelPublic:
        return public_of(s.LevelPublic, row, door_ids=await po.doors_of(session, row.id))


calendars_resource = Calendars(
    "holiday-calendars", po.HOLIDAY_CALENDAR, s.CalendarCreate, None, s.CalendarPublic, tags=_TAGS
)
levels_resource = Levels(
    "access-levels", po.ACCESS_LEVEL, s.LevelCreate, s.LevelUpdate, s.LevelPublic, tags=_TAGS
)
schedules = Schedules(
    "schedules", po.SCHEDULE, s.ScheduleCreate, s.ScheduleUpdate, s.SchedulePublic, tags=_TAGS
).router()
calendars = calendars_resource.router()
groups = Resource(
    "groups", po.GROUP, s.GroupCreate, s.GroupUpdate, s.GroupPublic, tags=_TAGS
).router()
levels = levels_resource.router()
routers = [schedules, calendars, groups, levels]


# -- holiday calendars: their days ----------------------------------------------------------


@calendars.put("/{item_id}/days", response_model=s.CalendarPublic)
async def put_calendar_days(
    item_id: IdPath, body: s.CalendarDays, session: SessionDep, actor: Writing
) -> s.CalendarPublic:
    """Replaces the calendar's holidays."""
    await po.set_holidays(session, actor, item_id, body.days)
    await session.commit()
    row = await get_or_404(session, HolidayCalendar, item_id)
    return await calendars_resource.present(session, row)


# -- groups: their members ------------------------------------------------------------------


@groups.get("/{item_id}/members", response_model=list[int])
async def list_members(item_id: IdPath, session: SessionDep, _: Reading) -> list[int]:
    return await po.members_of(session, item_id)


@groups.put("/{item_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def add_member(
    item_id: IdPath, person_id: IdPath, session: SessionDep, actor: Writing
) -> None:
    await po.set_member(session, actor, item_id, person_id, True)
    await session.commit()


@groups.delete("/{item_id}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    item_id: IdPath, person_id: IdPath, session: SessionDep, actor: Writing
) -> None:
    await po.set_member(session, actor, item_id, person_id, False)
    await session.commit()


# -- access levels: their grants ------------------------------------------------------------


@levels.get("/{item_id}/grants", response_model=list[s.GrantPublic])
async def list_grants(item_id: IdPath, session: SessionDep, _: Reading) -> list[Any]:
    return await po.grants_of(session, item_id)


@levels.post("/{item_id}/grants", response_model=s.GrantPublic, status_code=status.HTTP_201_CREATED)
async def create_grant(
    item_id: IdPath, body: s.GrantCreate, session: SessionDep, actor: Writing
) -> Any:
    row = await po.grant(session, actor, item_id, person_id=body.person_id, group_id=body.group_id)
    await session.commit()
    return row


@levels.delete("/{item_id}/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_grant(
    item_id: IdPath, grant_id: IdPath, session: SessionDep, actor: Writing
) -> None:
    await po.revoke_grant(session, actor, item_id, grant_id)
    await session.commit()
