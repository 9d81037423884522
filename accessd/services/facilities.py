"""Facilities, areas, doors, readers and panels: records with checked relationships."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import Base
from accessd.errors import Conflict, InvalidInput
from accessd.events import PolicyChanged, stage
from accessd.models import Area, Door, Facility, Panel, PersonGroup, Reader, Schedule
from accessd.models.enums import DoorMode
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404

SiteRecord = Facility | Area | Door | Reader | Panel
_SCHEDULED_MODES = frozenset({DoorMode.UNLOCKED_BY_SCHEDULE, DoorMode.FIRST_PERSON_IN})
R = TypeVar("R", Facility, Area, Door, Reader, Panel)


async def _ref(session: AsyncSession, model: type[Any], key: int | None, field: str) -> Any:
    if key is None:
        return None
    obj = await session.get(model, key)
    if obj is None:
        raise InvalidInput(
            f"{field}: {model.__name__.lower()} {key} does not exist", code="bad_reference"
        )
    return obj


async def _facility_of(session: AsyncSession, obj: Any) -> int:
    if isinstance(obj, Facility):
        return obj.id
    if isinstance(obj, Area | Panel):
        return obj.facility_id
    if isinstance(obj, Door):
        area = await session.get(Area, obj.area_id)
        assert area is not None
        return area.facility_id
    raise TypeError(type(obj).__name__)


async def _validate(session: AsyncSession, obj: SiteRecord) -> None:
    """Checks the relationships that the foreign keys alone do not."""
    if isinstance(obj, Facility):
        try:
            ZoneInfo(obj.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown timezone {obj.timezone!r}", code="bad_timezone") from None
        await _check_threat_rules(session, obj.threat_rules)
    elif isinstance(obj, Area):
        await _ref(session, Facility, obj.facility_id, "facility_id")
        seen = {obj.id} if obj.id is not None else set()
        parent = await _ref(session, Area, obj.parent_id, "parent_id")
        if parent is not None and parent.facility_id != obj.facility_id:
            raise InvalidInput("an area's parent must be in the same facility", code="bad_parent")
        while parent is not None:
            if parent.id in seen:
                raise InvalidInput("areas may not nest in a cycle", code="area_cycle")
            seen.add(parent.id)
            parent = await session.get(Area, parent.parent_id) if parent.parent_id else None
    elif isinstance(obj, Panel):
        await _ref(session, Facility, obj.facility_id, "facility_id")
    elif isinstance(obj, Door):
        area = await _ref(session, Area, obj.area_id, "area_id")
        other = await _ref(session, Area, obj.from_area_id, "from_area_id")
        if other is not None and other.facility_id != area.facility_id:
            raise InvalidInput("a door joins areas of one facility", code="bad_reference")
        if other is not None and other.id == area.id:
            raise InvalidInput("a door joins two different areas", code="bad_reference")
        panel = await _ref(session, Panel, obj.panel_id, "panel_id")
        if panel is not None and panel.facility_id != area.facility_id:
            raise InvalidInput("the door's panel is in another facility", code="bad_reference")
        await _ref(session, Schedule, obj.unlock_schedule_id, "unlock_schedule_id")
        if obj.mode in _SCHEDULED_MODES and obj.unlock_schedule_id is None:
            raise InvalidInput(
                f"a door in {obj.mode} mode needs an unlock_schedule_id", code="schedule_required"
            )
    elif isinstance(obj, Reader):
        door = await _ref(session, Door, obj.door_id, "door_id")
        panel = await _ref(session, Panel, obj.panel_id, "panel_id")
        if panel is not None and panel.facility_id != await _facility_of(session, door):
            raise InvalidInput("the reader's panel is in another facility", code="bad_reference")
        if obj.osdp_address is not None and not 0 <= obj.osdp_address <= 126:
            raise InvalidInput("OSDP addresses are 0 to 126", code="bad_address")


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


def _name(model: type[Base]) -> str:
    return model.__name__.lower()


async def create(
    session: AsyncSession, actor: Actor, model: type[R], fields: Mapping[str, Any]
) -> R:
    obj = model(**fields)
    await _validate(session, obj)
    session.add(obj)
    await _flush(session, model)
    await audit.record(
        session,
        actor=actor.label,
        action=f"{_name(model)}.create",
        entity=_name(model),
        entity_id=obj.id,
        data=dict(fields),
    )
    stage(session, PolicyChanged(_name(model)))
    return obj


async def update(
    session: AsyncSession,
    actor: Actor,
    model: type[R],
    key: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> R:
    obj = await get_or_404(session, model, key)
    check_version(obj, expected_version)
    diff = apply_changes(obj, changes)
    if not diff:
        return obj
    # The lookups while validating would otherwise autoflush the change first, so a taken
    # name surfaced there as a bare IntegrityError instead of `duplicate` from _flush, and a
    # bad reference was written before it was checked.
    with session.no_autoflush:
        await _validate(session, obj)
    await _flush(session, model)
    await audit.record(
        session,
        actor=actor.label,
        action=f"{_name(model)}.update",
        entity=_name(model),
        entity_id=obj.id,
        data={"changes": diff},
    )
    stage(session, PolicyChanged(_name(model)))
    return obj


async def delete(
    session: AsyncSession,
    actor: Actor,
    model: type[SiteRecord],
    key: int,
    expected_version: int | None,
) -> None:
    obj = await get_or_404(session, model, key)
    check_version(obj, expected_version)
    await session.delete(obj)
    await _flush(session, model, deleting=True)
    await audit.record(
        session,
        actor=actor.label,
        action=f"{_name(model)}.delete",
        entity=_name(model),
        entity_id=key,
        data={},
    )
    stage(session, PolicyChanged(_name(model)))


async def _flush(session: AsyncSession, model: type[Base], *, deleting: bool = False) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if deleting:
            raise Conflict(
                f"the {_name(model)} is still used by other records", code="in_use"
            ) from exc
        raise Conflict(f"a {_name(model)} with that name exists already", code="duplicate") from exc


async def list_records(
    session: AsyncSession,
    model: type[SiteRecord],
    *,
    after: int,
    limit: int,
    filters: Mapping[str, Any] | None = None,
) -> list[Any]:
    stmt = select(model).where(model.id > after)
    for name, value in (filters or {}).items():
        if value is not None:
            stmt = stmt.where(getattr(model, name) == value)
    rows = await session.scalars(stmt.order_by(model.id).limit(limit))
    return list(rows.all())
