"""Facilities, areas, panels, doors and readers: the kinds of site record, each with the
relationships its foreign keys alone do not check. Written through `services.crud`."""

from __future__ import annotations

from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import Base
from accessd.errors import InvalidInput
from accessd.models import Area, Door, Facility, Panel, PersonGroup, Reader, Schedule
from accessd.models.enums import DoorMode, Entity
from accessd.services.crud import Kind
from accessd.services.records import referenced

B = TypeVar("B", bound=Base)
_SCHEDULED_MODES = frozenset({DoorMode.UNLOCKED_BY_SCHEDULE, DoorMode.FIRST_PERSON_IN})


async def _optional(session: AsyncSession, model: type[B], key: int | None, field: str) -> B | None:
    return None if key is None else await referenced(session, model, key, field)


async def _check_facility(session: AsyncSession, facility: Facility) -> None:
    try:
        ZoneInfo(facility.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone {facility.timezone!r}", code="bad_timezone") from None
    await _check_threat_rules(session, facility.threat_rules)


async def _check_threat_rules(session: AsyncSession, rules: dict[str, Any] | None) -> None:
    named = {g for rule in (rules or {}).values() for g in rule.get("only_groups") or ()}
    if not named:
        return
    known = set(await session.scalars(select(PersonGroup.name).where(PersonGroup.name.in_(named))))
    if named - known:
        raise InvalidInput(
            f"threat_rules name unknown groups: {', '.join(sorted(named - known))}",
            code="bad_reference",
        )


async def _check_area(session: AsyncSession, area: Area) -> None:
    await referenced(session, Facility, area.facility_id, "facility_id")
    seen = {area.id} if area.id is not None else set()
    parent = await _optional(session, Area, area.parent_id, "parent_id")
    if parent is not None and parent.facility_id != area.facility_id:
        raise InvalidInput("an area's parent must be in the same facility", code="bad_parent")
    while parent is not None:
        if parent.id in seen:
            raise InvalidInput("areas may not nest in a cycle", code="area_cycle")
        seen.add(parent.id)
        parent = await session.get(Area, parent.parent_id) if parent.parent_id else None


async def _check_panel(session: AsyncSession, panel: Panel) -> None:
    await referenced(session, Facility, panel.facility_id, "facility_id")


async def _check_door(session: AsyncSession, door: Door) -> None:
    area = await referenced(session, Area, door.area_id, "area_id")
    other = await _optional(session, Area, door.from_area_id, "from_area_id")
    if other is not None and other.facility_id != area.facility_id:
        raise InvalidInput("a door joins areas of one facility", code="bad_reference")
    if other is not None and other.id == area.id:
        raise InvalidInput("a door joins two different areas", code="bad_reference")
    panel = await _optional(session, Panel, door.panel_id, "panel_id")
    if panel is not None and panel.facility_id != area.facility_id:
        raise InvalidInput("the door's panel is in another facility", code="bad_reference")
    await _optional(session, Schedule, door.unlock_schedule_id, "unlock_schedule_id")
    if door.mode in _SCHEDULED_MODES and door.unlock_schedule_id is None:
        raise InvalidInput(
            f"a door in {door.mode} mode needs an unlock_schedule_id", code="schedule_required"
        )


async def _check_reader(session: AsyncSession, reader: Reader) -> None:
    door = await referenced(session, Door, reader.door_id, "door_id")
    panel = await _optional(session, Panel, reader.panel_id, "panel_id")
    if panel is not None:
        area = await referenced(session, Area, door.area_id, "area_id")
        if panel.facility_id != area.facility_id:
            raise InvalidInput("the reader's panel is in another facility", code="bad_reference")
    if reader.osdp_address is not None and not 0 <= reader.osdp_address <= 126:
        raise InvalidInput("OSDP addresses are 0 to 126", code="bad_address")


FACILITY = Kind(Facility, Entity.FACILITY, _check_facility)
AREA = Kind(Area, Entity.AREA, _check_area)
PANEL = Kind(Panel, Entity.PANEL, _check_panel)
DOOR = Kind(Door, Entity.DOOR, _check_door)
READER = Kind(Reader, Entity.READER, _check_reader)
