"""Creating, changing and deleting the records of door policy one at a time, every kind
the same way: checked, audited under its `Entity`, and staged as `PolicyChanged`.

The errors are the same for every kind, and so are their codes on the API:

    NotFound              404 not_found         no record with that id
    PreconditionRequired  428 if_match_required an update or delete without If-Match
    PreconditionFailed    412 stale_version     one based on a version since changed
    Conflict              409 duplicate         a unique name is taken
    Conflict              409 in_use            a deleted record is still referred to
    InvalidInput          422 (the check's)     a rule the foreign keys alone do not hold
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.errors import Conflict
from accessd.events import PolicyChanged, stage
from accessd.models import (
    AccessLevel,
    Area,
    Door,
    Facility,
    HolidayCalendar,
    Panel,
    PersonGroup,
    Reader,
    Schedule,
)
from accessd.models.enums import Entity
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404

#: A kind of record edited here. Constrained, not bounded: each has an int `id` column and a
#: `version`, which no base class they share declares.
M = TypeVar(
    "M", Facility, Area, Panel, Door, Reader, Schedule, HolidayCalendar, PersonGroup, AccessLevel
)


async def _no_check(session: AsyncSession, row: Any) -> None:
    del session, row


@dataclass(frozen=True, slots=True)
class Kind(Generic[M]):
    """One kind of record: its model, the entity its audit entries name, and the rules its
    foreign keys alone do not hold (run before every write; raise InvalidInput)."""

    model: type[M]
    entity: Entity
    check: Callable[[AsyncSession, M], Awaitable[None]] = _no_check


async def create(
    session: AsyncSession, actor: Actor, kind: Kind[M], fields: Mapping[str, Any]
) -> M:
    row = kind.model(**fields)
    await kind.check(session, row)
    session.add(row)
    await _flush(session, kind.entity)
    await changed(session, actor, kind.entity, row.id, "create", dict(fields))
    return row


async def update(
    session: AsyncSession,
    actor: Actor,
    kind: Kind[M],
    key: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> M:
    row = await get_or_404(session, kind.model, key)
    check_version(row, expected_version)
    diff = apply_changes(row, changes)
    if not diff:
        return row
    # The check's lookups would otherwise autoflush the change first: a taken name would
    # surface there as a bare IntegrityError instead of `duplicate`, and a bad reference
    # would be written before it was checked.
    with session.no_autoflush:
        await kind.check(session, row)
    await _flush(session, kind.entity)
    await changed(session, actor, kind.entity, key, "update", {"changes": diff})
    return row


async def delete(
    session: AsyncSession, actor: Actor, kind: Kind[M], key: int, expected_version: int | None
) -> None:
    row = await get_or_404(session, kind.model, key)
    check_version(row, expected_version)
    await session.delete(row)
    await _flush(session, kind.entity, deleting=True)
    await changed(session, actor, kind.entity, key, "delete", {})


async def changed(
    session: AsyncSession,
    actor: Actor,
    entity: Entity,
    key: object,
    action: str,
    data: Mapping[str, Any],
) -> None:
    """Audits `<entity>.<action>` of record `key` and tells the decision caches."""
    await audit.record(
        session,
        actor=actor.label,
        action=f"{entity}.{action}",
        entity=entity,
        entity_id=key,
        data=dict(data),
    )
    stage(session, PolicyChanged(entity))


async def _flush(session: AsyncSession, entity: Entity, *, deleting: bool = False) -> None:
    noun = entity.replace("_", " ")
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # The kinds' checks have found every bad reference by now, so what is left is a
        # unique name on a write, or a row that others still refer to on a delete.
        if deleting:
            raise Conflict(f"the {noun} is still used by other records", code="in_use") from exc
        raise Conflict(f"a {noun} with that name exists already", code="duplicate") from exc
