"""Writing a site diff to the database: kind by kind, parents before children, deletions
last and children first, so every foreign key points at a row that exists when flushed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Area,
    Door,
    Facility,
    GroupMember,
    Holiday,
    HolidayCalendar,
    Panel,
    PersonGroup,
    Reader,
    Schedule,
)
from accessd.models.enums import Entity
from accessd.policyfile.findings import PolicyConflict
from accessd.policyfile.site import (
    AreaRec,
    DoorRec,
    LevelRec,
    ReaderRec,
    Site,
    SiteDiff,
)
from accessd.policyfile.stored import Rows, threats_json

#: Ids per IN list when deleting links.
_CHUNK = 500


class Writer:
    """Writes one diff; `write()` returns (entity, key) -> row id for the audit entries."""

    def __init__(
        self,
        session: AsyncSession,
        rows: Rows,
        site: Site,
        changes: SiteDiff,
        people: dict[str, int],
    ) -> None:
        self.s = session
        self.rows = rows
        self.site = site
        self.changes = changes
        self.people = people
        #: (entity, key) -> row id, for the audit entries.
        self.ids: dict[tuple[Entity, Any], int] = {}

    def touched(self, entity: Entity) -> list[Any]:
        return self.changes.keys(entity, "added") + self.changes.keys(entity, "changed")

    async def flush(self, entity: Entity, made: Iterable[tuple[Any, Any]]) -> None:
        """Flushes, so the rows just made have the ids their children refer to."""
        await self.s.flush()
        for key, row in made:
            self.ids[(entity, key)] = row.id

    async def write(self) -> dict[tuple[Entity, Any], int]:
        await self.calendars()
        await self.schedules()
        await self.groups()
        await self.facilities()
        await self.panels()
        await self.areas()
        await self.doors()
        await self.readers()
        await self.levels()
        await self.deletions()
        return self.ids

    def _row(self, index: dict[Any, Any], key: Any, model: type[Any], **fields: Any) -> Any:
        """The existing row for `key` with `fields` set, or a new one (added to the session)."""
        row = index.get(key)
        if row is None:
            row = index[key] = model(**fields)
            self.s.add(row)
        else:
            for name, value in fields.items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
        return row

    async def calendars(self) -> None:
        made = []
        for key in self.touched(Entity.HOLIDAY_CALENDAR):
            rec = self.site.calendars[key]
            made.append((key, self._row(self.rows.calendars, key, HolidayCalendar, name=rec.name)))
        await self.flush(Entity.HOLIDAY_CALENDAR, made)
        for key, cal in made:
            old = {(h.day, h.name): h for h in self.rows.holidays.get(cal.id, ())}
            want = self.site.calendars[key].days
            for pair, hol in old.items():
                if pair not in want:
                    await self.s.delete(hol)
            # Deletes first: a renamed day keeps its date, which is unique per calendar.
            await self.s.flush()
            for day, name in sorted(want - old.keys()):
                self.s.add(Holiday(calendar_id=cal.id, day=day, name=name))

    async def schedules(self) -> None:
        made = []
        for key in self.touched(Entity.SCHEDULE):
            rec = self.site.schedules[key]
            made.append(
                (
                    key,
                    self._row(
                        self.rows.schedules,
                        key,
                        Schedule,
                        name=rec.name,
                        week=[[list(span) for span in day] for day in rec.week],
                        holiday=[list(span) for span in rec.on_holidays],
                        calendar_ids=sorted(
                            self.rows.calendars[c].id for c in rec.holiday_calendars
                        ),
                    ),
                )
            )
        await self.flush(Entity.SCHEDULE, made)

    async def groups(self) -> None:
        made = []
        for key in self.touched(Entity.GROUP):
            rec = self.site.groups[key]
            made.append(
                (
                    key,
                    self._row(
                        self.rows.groups,
                        key,
                        PersonGroup,
                        name=rec.name,
                        description=rec.description,
                    ),
                )
            )
        await self.flush(Entity.GROUP, made)
        for key, group in made:
            want = {self.people[m] for m in self.site.groups[key].members}
            have = self.rows.members.get(group.id, set())
            gone = sorted(have - want)
            for i in range(0, len(gone), _CHUNK):
                await self.s.execute(
                    delete(GroupMember)
                    .where(GroupMember.group_id == group.id)
                    .where(GroupMember.person_id.in_(gone[i : i + _CHUNK])),
                    execution_options={"synchronize_session": False},
                )
            new = [{"group_id": group.id, "person_id": p} for p in sorted(want - have)]
            if new:
                # A bulk INSERT: a group of a large deployment has 10,000s of members.
                await self.s.execute(insert(GroupMember), new)

    async def facilities(self) -> None:
        made = []
        for key in self.touched(Entity.FACILITY):
            rec = self.site.facilities[key]
            made.append(
                (
                    key,
                    self._row(
                        self.rows.facilities,
                        key,
                        Facility,
                        code=rec.code,
                        name=rec.name,
                        timezone=rec.timezone,
                        security_level=rec.security_level,
                        address=rec.address,
                        threat_rules=threats_json(rec.threat_levels),
                    ),
                )
            )
        await self.flush(Entity.FACILITY, made)

    async def panels(self) -> None:
        made = []
        for key in self.touched(Entity.PANEL):
            rec = self.site.panels[key]
            made.append(
                (
                    key,
                    self._row(
                        self.rows.panels,
                        key,
                        Panel,
                        facility_id=self.rows.facilities[rec.facility].id,
                        name=rec.name,
                        transport=rec.transport,
                    ),
                )
            )
        await self.flush(Entity.PANEL, made)

    async def areas(self) -> None:
        by_depth: dict[int, list[tuple[str, str]]] = {}
        for key in self.touched(Entity.AREA):
            by_depth.setdefault(self.site.area_depth(key), []).append(key)
        for depth in sorted(by_depth):
            made = []
            for key in by_depth[depth]:
                rec = self.site.areas[key]
                parent = self.rows.areas[(key[0], rec.parent)] if rec.parent else None
                made.append((key, self._area(key, rec, parent)))
            await self.flush(Entity.AREA, made)

    def _area(self, key: tuple[str, str], rec: AreaRec, parent: Area | None) -> Area:
        row: Area = self._row(
            self.rows.areas,
            key,
            Area,
            facility_id=self.rows.facilities[rec.facility].id,
            parent_id=parent.id if parent else None,
            name=rec.name,
            area_class=rec.area_class,
            is_scif=rec.scif,
            min_eligibility=rec.clearance,
            programs=sorted(rec.programs),
            two_person_window_s=rec.two_person_window_s,
            escort_required=rec.escort_required,
            escort_window_s=rec.escort_window_s,
            anti_passback=rec.anti_passback,
            apb_reset_s=rec.apb_reset_s,
            occupancy_limit=rec.occupancy_limit,
        )
        return row

    async def doors(self) -> None:
        made = []
        for key in self.touched(Entity.DOOR):
            made.append((key, self._door(key, self.site.doors[key])))
        await self.flush(Entity.DOOR, made)

    def _door(self, key: tuple[str, str], rec: DoorRec) -> Door:
        code = rec.facility
        fields: dict[str, Any] = {
            "area_id": self.rows.areas[(code, rec.into)].id,
            "from_area_id": self.rows.areas[(code, rec.from_area)].id if rec.from_area else None,
            "panel_id": self.rows.panels[(code, rec.panel)].id if rec.panel else None,
            "name": rec.name,
            "mode": rec.mode,
            "unlock_schedule_id": self.rows.schedules[rec.unlock_schedule].id
            if rec.unlock_schedule
            else None,
            "unlock_seconds": rec.unlock_seconds,
            "accepts": sorted(rec.accepts),
        }
        row: Door = self._row(self.rows.doors, key, Door, **fields)
        return row

    async def readers(self) -> None:
        made = []
        for key in self.touched(Entity.READER):
            rec: ReaderRec = self.site.readers[key]
            code = rec.facility
            made.append(
                (
                    key,
                    self._row(
                        self.rows.readers,
                        key,
                        Reader,
                        door_id=self.rows.doors[(code, rec.door)].id,
                        panel_id=self.rows.panels[(code, rec.panel)].id if rec.panel else None,
                        name=rec.name,
                        direction=rec.direction,
                        contact=rec.contact,
                        contactless=rec.contactless,
                        pin_pad=rec.pin_pad,
                        biometric=rec.biometric,
                        osdp_address=rec.osdp_address,
                    ),
                )
            )
        await self.flush(Entity.READER, made)

    async def levels(self) -> None:
        made = []
        for key in self.touched(Entity.ACCESS_LEVEL):
            rec = self.site.levels[key]
            made.append(
                (
                    key,
                    self._row(
                        self.rows.levels,
                        key,
                        AccessLevel,
                        name=rec.name,
                        description=rec.description,
                        schedule_id=self.rows.schedules[rec.schedule].id if rec.schedule else None,
                    ),
                )
            )
        await self.flush(Entity.ACCESS_LEVEL, made)
        for key, level in made:
            await self._level_links(level, self.site.levels[key])

    async def _level_links(self, level: AccessLevel, rec: LevelRec) -> None:
        want_doors = {self.rows.doors[d].id for d in rec.doors}
        have_doors = {link.door_id: link for link in self.rows.level_doors.get(level.id, ())}
        for door_id, link in have_doors.items():
            if door_id not in want_doors:
                await self.s.delete(link)
        self.s.add_all(
            AccessLevelDoor(level_id=level.id, door_id=d) for d in want_doors - have_doors.keys()
        )
        want: set[tuple[int | None, int | None]] = {
            (self.rows.groups[g].id, None) for g in rec.groups
        } | {(None, self.people[p]) for p in rec.people}
        have = self.rows.grants.get(level.id, {})
        gone = sorted(grant for pair, grant in have.items() if pair not in want)
        for i in range(0, len(gone), _CHUNK):
            await self.s.execute(
                delete(AccessGrant).where(AccessGrant.id.in_(gone[i : i + _CHUNK])),
                execution_options={"synchronize_session": False},
            )
        new = [
            {"level_id": level.id, "group_id": g, "person_id": p}
            for g, p in sorted(want - have.keys(), key=str)
        ]
        if new:
            await self.s.execute(insert(AccessGrant), new)

    async def deletions(self) -> None:
        """Children before parents; each in a savepoint so a refusal names its record."""
        rows = self.rows
        depth = _depths(rows)
        doomed: list[tuple[Entity, Any, Sequence[Any]]] = [
            (Entity.ACCESS_LEVEL, rows.levels, self.changes.keys(Entity.ACCESS_LEVEL, "removed")),
            (Entity.READER, rows.readers, self.changes.keys(Entity.READER, "removed")),
            (Entity.DOOR, rows.doors, self.changes.keys(Entity.DOOR, "removed")),
            (
                Entity.AREA,
                rows.areas,
                sorted(
                    self.changes.keys(Entity.AREA, "removed"),
                    key=lambda k: -depth[rows.areas[k].id],
                ),
            ),
            (Entity.PANEL, rows.panels, self.changes.keys(Entity.PANEL, "removed")),
            (Entity.FACILITY, rows.facilities, self.changes.keys(Entity.FACILITY, "removed")),
            (Entity.GROUP, rows.groups, self.changes.keys(Entity.GROUP, "removed")),
            (Entity.SCHEDULE, rows.schedules, self.changes.keys(Entity.SCHEDULE, "removed")),
            (
                Entity.HOLIDAY_CALENDAR,
                rows.calendars,
                self.changes.keys(Entity.HOLIDAY_CALENDAR, "removed"),
            ),
        ]
        await self.s.flush()
        for entity, index, keys in doomed:
            for key in keys:
                row = index[key]
                self.ids[(entity, key)] = row.id
                try:
                    async with self.s.begin_nested():
                        await self.s.delete(row)
                        await self.s.flush()
                except IntegrityError as exc:
                    name = key if isinstance(key, str) else "/".join(key)
                    raise PolicyConflict(
                        f"cannot remove {entity.replace('_', ' ')} {name}: other records "
                        f"still refer to it",
                        code="policy_in_use",
                    ) from exc


def _depths(rows: Rows) -> dict[int, int]:
    """Area id -> how deep it nests, as the database holds it."""
    by_id = {a.id: a for a in rows.areas.values()}
    out = {}
    for area in by_id.values():
        depth, parent = 0, area.parent_id
        while parent is not None and parent in by_id and depth <= len(by_id):
            depth += 1
            parent = by_id[parent].parent_id
        out[area.id] = depth
    return out
