"""Schedules, holiday calendars, groups and access levels through the API. A policy file
applied later replaces what is edited here: a deployment keeps one source of truth."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdPath, IfMatchDep, SessionDep, etag, require
from accessd.api.schemas import policy_objects as s
from accessd.api.schemas.common import Page
from accessd.auth.permissions import Permission
from accessd.models import AccessLevel, HolidayCalendar, PersonGroup, Schedule
from accessd.policyfile import times
from accessd.services import policy_objects as po
from accessd.services.actors import Actor
from accessd.services.records import get_or_404

Reading = Annotated[Actor, Depends(require(Permission.FACILITIES_READ))]
Writing = Annotated[Actor, Depends(require(Permission.FACILITIES_WRITE))]
Limit = Annotated[int, Query(ge=1, le=1000)]

schedules = APIRouter(prefix="/v1/schedules", tags=["policy"])
calendars = APIRouter(prefix="/v1/holiday-calendars", tags=["policy"])
groups = APIRouter(prefix="/v1/groups", tags=["policy"])
levels = APIRouter(prefix="/v1/access-levels", tags=["policy"])
routers = [schedules, calendars, groups, levels]


async def _page(session: Any, model: Any, after: int, limit: int) -> list[Any]:
    rows = await session.scalars(
        select(model).where(model.id > after).order_by(model.id).limit(limit)
    )
    return list(rows.all())


# -- schedules ------------------------------------------------------------------------------


def _schedule(row: Schedule) -> s.SchedulePublic:
    week = tuple(tuple((a, b) for a, b in day) for day in row.week)
    return s.SchedulePublic(
        id=row.id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        name=row.name,
        week=times.render_week(week),
        on_holidays=[times.format_range((a, b)) for a, b in row.holiday],
        holiday_calendar_ids=list(row.calendar_ids),
    )


async def _schedule_fields(session: Any, changes: dict[str, Any]) -> dict[str, Any]:
    fields = {
        k: v for k, v in changes.items() if k not in ("week", "on_holidays", "holiday_calendars")
    }
    fields |= po.week_fields(changes.get("week"), changes.get("on_holidays"))
    if changes.get("holiday_calendars") is not None:
        fields["calendar_ids"] = await po.calendar_ids(session, changes["holiday_calendars"])
    return fields


@schedules.get("", response_model=Page[s.SchedulePublic])
async def list_schedules(
    session: SessionDep, _: Reading, after: AfterQuery = 0, limit: Limit = 100
) -> Page[s.SchedulePublic]:
    rows = await _page(session, Schedule, after, limit)
    return Page(
        items=[_schedule(r) for r in rows], next_after=rows[-1].id if len(rows) == limit else None
    )


@schedules.post("", response_model=s.SchedulePublic, status_code=status.HTTP_201_CREATED)
async def create_schedule(
    body: s.ScheduleCreate, session: SessionDep, response: Response, actor: Writing
) -> s.SchedulePublic:
    fields = await _schedule_fields(session, body.model_dump())
    fields.setdefault("holiday", [])
    fields.setdefault("calendar_ids", [])
    row = await po.create(session, actor, Schedule, fields)
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return _schedule(row)


@schedules.get("/{item_id}", response_model=s.SchedulePublic)
async def get_schedule(
    item_id: IdPath, session: SessionDep, response: Response, _: Reading
) -> s.SchedulePublic:
    row = await get_or_404(session, Schedule, item_id)
    response.headers["ETag"] = etag(row.version)
    return _schedule(row)


@schedules.patch("/{item_id}", response_model=s.SchedulePublic)
async def update_schedule(
    item_id: IdPath,
    body: s.ScheduleUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Writing,
) -> s.SchedulePublic:
    fields = await _schedule_fields(session, body.changes())
    row = await po.update(session, actor, Schedule, item_id, fields, version)
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return _schedule(row)


@schedules.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
) -> None:
    await po.remove(session, actor, Schedule, item_id, version)
    await session.commit()


# -- holiday calendars ----------------------------------------------------------------------


async def _calendar(session: Any, row: HolidayCalendar) -> s.CalendarPublic:
    return s.CalendarPublic(
        id=row.id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        name=row.name,
        days=await po.holidays_of(session, row.id),
    )


@calendars.get("", response_model=Page[s.CalendarPublic])
async def list_calendars(
    session: SessionDep, _: Reading, after: AfterQuery = 0, limit: Limit = 100
) -> Page[s.CalendarPublic]:
    rows = await _page(session, HolidayCalendar, after, limit)
    return Page(
        items=[await _calendar(session, r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )


@calendars.post("", response_model=s.CalendarPublic, status_code=status.HTTP_201_CREATED)
async def create_calendar(
    body: s.CalendarCreate, session: SessionDep, actor: Writing
) -> s.CalendarPublic:
    row = await po.create(session, actor, HolidayCalendar, {"name": body.name})
    await po.set_holidays(session, actor, row.id, body.days)
    await session.commit()
    return await _calendar(session, row)


@calendars.get("/{item_id}", response_model=s.CalendarPublic)
async def get_calendar(item_id: IdPath, session: SessionDep, _: Reading) -> s.CalendarPublic:
    return await _calendar(session, await get_or_404(session, HolidayCalendar, item_id))


@calendars.put("/{item_id}/days", response_model=s.CalendarPublic)
async def put_calendar_days(
    item_id: IdPath, body: s.CalendarDays, session: SessionDep, actor: Writing
) -> s.CalendarPublic:
    """Replaces the calendar's holidays."""
    await po.set_holidays(session, actor, item_id, body.days)
    await session.commit()
    return await _calendar(session, await get_or_404(session, HolidayCalendar, item_id))


@calendars.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_calendar(
    item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
) -> None:
    await po.remove(session, actor, HolidayCalendar, item_id, version)
    await session.commit()


# -- groups ---------------------------------------------------------------------------------


@groups.get("", response_model=Page[s.GroupPublic])
async def list_groups(
    session: SessionDep, _: Reading, after: AfterQuery = 0, limit: Limit = 100
) -> Page[s.GroupPublic]:
    rows = await _page(session, PersonGroup, after, limit)
    return Page(
        items=[s.GroupPublic.model_validate(r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )


@groups.post("", response_model=s.GroupPublic, status_code=status.HTTP_201_CREATED)
async def create_group(
    body: s.GroupCreate, session: SessionDep, response: Response, actor: Writing
) -> PersonGroup:
    row = await po.create(session, actor, PersonGroup, body.model_dump())
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return row


@groups.get("/{item_id}", response_model=s.GroupPublic)
async def get_group(
    item_id: IdPath, session: SessionDep, response: Response, _: Reading
) -> PersonGroup:
    row = await get_or_404(session, PersonGroup, item_id)
    response.headers["ETag"] = etag(row.version)
    return row


@groups.patch("/{item_id}", response_model=s.GroupPublic)
async def update_group(
    item_id: IdPath,
    body: s.GroupUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Writing,
) -> PersonGroup:
    row = await po.update(session, actor, PersonGroup, item_id, body.changes(), version)
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return row


@groups.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(
    item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
) -> None:
    await po.remove(session, actor, PersonGroup, item_id, version)
    await session.commit()


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


# -- access levels --------------------------------------------------------------------------


async def _level(session: Any, row: AccessLevel) -> s.LevelPublic:
    return s.LevelPublic(
        id=row.id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        name=row.name,
        schedule_id=row.schedule_id,
        description=row.description,
        door_ids=await po.doors_of(session, row.id),
    )


@levels.get("", response_model=Page[s.LevelPublic])
async def list_levels(
    session: SessionDep, _: Reading, after: AfterQuery = 0, limit: Limit = 100
) -> Page[s.LevelPublic]:
    rows = await _page(session, AccessLevel, after, limit)
    return Page(
        items=[await _level(session, r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )


@levels.post("", response_model=s.LevelPublic, status_code=status.HTTP_201_CREATED)
async def create_level(
    body: s.LevelCreate, session: SessionDep, response: Response, actor: Writing
) -> s.LevelPublic:
    if body.schedule_id is not None:
        await get_or_404(session, Schedule, body.schedule_id)
    row = await po.create(session, actor, AccessLevel, body.model_dump(exclude={"door_ids"}))
    await po.set_level_doors(session, actor, row.id, body.door_ids)
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return await _level(session, row)


@levels.get("/{item_id}", response_model=s.LevelPublic)
async def get_level(
    item_id: IdPath, session: SessionDep, response: Response, _: Reading
) -> s.LevelPublic:
    row = await get_or_404(session, AccessLevel, item_id)
    response.headers["ETag"] = etag(row.version)
    return await _level(session, row)


@levels.patch("/{item_id}", response_model=s.LevelPublic)
async def update_level(
    item_id: IdPath,
    body: s.LevelUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Writing,
) -> s.LevelPublic:
    changes = body.changes()
    door_ids: list[int] | None = changes.pop("door_ids", None)  # type: ignore[assignment]
    if changes.get("schedule_id") is not None:
        await get_or_404(session, Schedule, changes["schedule_id"])
    row = await po.update(session, actor, AccessLevel, item_id, changes, version)
    if door_ids is not None:
        await po.set_level_doors(session, actor, item_id, door_ids)
    await session.commit()
    response.headers["ETag"] = etag(row.version)
    return await _level(session, row)


@levels.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_level(
    item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
) -> None:
    await po.remove(session, actor, AccessLevel, item_id, version)
    await session.commit()


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
