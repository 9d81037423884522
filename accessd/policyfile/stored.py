"""The policy the database holds, as a site, with its rows indexed by the same natural keys
(so the writer finds the row each change is about)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
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
    Person,
    PersonGroup,
    Reader,
    Schedule,
)
from accessd.policyfile.findings import PolicyConflict
from accessd.policyfile.site import (
    AreaRec,
    CalendarRec,
    DoorRec,
    FacilityRec,
    GroupRec,
    LevelRec,
    PanelRec,
    ReaderRec,
    ScheduleRec,
    Site,
    ThreatRules,
)


@dataclass
class Rows:
    """The database's policy rows by the same natural keys as the site."""

    calendars: dict[str, HolidayCalendar] = field(default_factory=dict)
    holidays: dict[int, list[Holiday]] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    groups: dict[str, PersonGroup] = field(default_factory=dict)
    #: group id -> person ids (plain values: a large deployment has 100,000s of members).
    members: dict[int, set[int]] = field(default_factory=dict)
    facilities: dict[str, Facility] = field(default_factory=dict)
    panels: dict[tuple[str, str], Panel] = field(default_factory=dict)
    areas: dict[tuple[str, str], Area] = field(default_factory=dict)
    doors: dict[tuple[str, str], Door] = field(default_factory=dict)
    readers: dict[tuple[str, str, str], Reader] = field(default_factory=dict)
    levels: dict[str, AccessLevel] = field(default_factory=dict)
    level_doors: dict[int, list[AccessLevelDoor]] = field(default_factory=dict)
    #: level id -> (group id, person id) -> grant id.
    grants: dict[int, dict[tuple[int | None, int | None], int]] = field(default_factory=dict)


def _person_ref(person_id: int, external_id: str | None) -> str:
    # A person without an external_id cannot be named in a file; the diff still shows them.
    return external_id if external_id is not None else f"#{person_id}"


def _unique(what: str, index: dict[Any, Any], key: Any, row: Any) -> None:
    if key in index:
        raise PolicyConflict(
            f"the database holds two {what}s named {'/'.join(key)}: rename one before "
            f"applying a policy file, which tells them apart by name"
        )
    index[key] = row


async def load(session: AsyncSession) -> tuple[Site, Rows]:
    """The site the database holds, and its rows."""
    site, rows = Site(), Rows()

    for hol in await session.scalars(select(Holiday).order_by(Holiday.day)):
        rows.holidays.setdefault(hol.calendar_id, []).append(hol)
    cal_names: dict[int, str] = {}
    for cal in await session.scalars(select(HolidayCalendar).order_by(HolidayCalendar.id)):
        rows.calendars[cal.name], cal_names[cal.id] = cal, cal.name
        site.calendars[cal.name] = CalendarRec(
            cal.name, frozenset((h.day, h.name) for h in rows.holidays.get(cal.id, ()))
        )

    sched_names: dict[int, str] = {}
    for s in await session.scalars(select(Schedule).order_by(Schedule.id)):
        rows.schedules[s.name], sched_names[s.id] = s, s.name
        site.schedules[s.name] = ScheduleRec(
            s.name,
            tuple(tuple((a, b) for a, b in day) for day in s.week),
            tuple((a, b) for a, b in s.holiday),
            frozenset(cal_names.get(c, f"#{c}") for c in s.calendar_ids),
        )

    group_names: dict[int, str] = {}
    members: dict[int, set[str]] = {}
    for group_id, person_id, ext in await bulk.fetch_all(
        session,
        select(GroupMember.group_id, GroupMember.person_id, Person.external_id).join(
            Person, Person.id == GroupMember.person_id
        ),
    ):
        rows.members.setdefault(group_id, set()).add(person_id)
        members.setdefault(group_id, set()).add(_person_ref(person_id, ext))
    for g in await session.scalars(select(PersonGroup).order_by(PersonGroup.id)):
        rows.groups[g.name], group_names[g.id] = g, g.name
        site.groups[g.name] = GroupRec(g.name, g.description, frozenset(members.get(g.id, ())))

    codes: dict[int, str] = {}
    for f in await session.scalars(select(Facility).order_by(Facility.id)):
        rows.facilities[f.code], codes[f.id] = f, f.code
        site.facilities[f.code] = FacilityRec(
            f.code, f.name, f.timezone, f.security_level, f.address, threats_of(f.threat_rules)
        )

    panels: dict[int, Panel] = {}
    for p in await session.scalars(select(Panel).order_by(Panel.id)):
        key = (codes[p.facility_id], p.name)
        rows.panels[key], panels[p.id] = p, p
        site.panels[key] = PanelRec(key[0], p.name, p.transport)

    areas: dict[int, Area] = {}
    for a in await session.scalars(select(Area).order_by(Area.id)):
        areas[a.id] = a
    for a in areas.values():
        key = (codes[a.facility_id], a.name)
        rows.areas[key] = a
        site.areas[key] = AreaRec(
            facility=key[0],
            name=a.name,
            parent=areas[a.parent_id].name if a.parent_id is not None else None,
            area_class=a.area_class,
            scif=a.is_scif,
            clearance=a.min_eligibility,
            programs=frozenset(a.programs),
            two_person_window_s=a.two_person_window_s,
            escort_required=a.escort_required,
            escort_window_s=a.escort_window_s,
            anti_passback=a.anti_passback,
            apb_reset_s=a.apb_reset_s,
            occupancy_limit=a.occupancy_limit,
        )

    doors: dict[int, tuple[str, str]] = {}
    for d in await session.scalars(select(Door).order_by(Door.id)):
        area = areas[d.area_id]
        key = (codes[area.facility_id], d.name)
        _unique("door", rows.doors, key, d)
        doors[d.id] = key
        site.doors[key] = DoorRec(
            facility=key[0],
            name=d.name,
            into=area.name,
            from_area=areas[d.from_area_id].name if d.from_area_id is not None else None,
            panel=panels[d.panel_id].name if d.panel_id is not None else None,
            mode=d.mode,
            unlock_schedule=sched_names.get(d.unlock_schedule_id)
            if d.unlock_schedule_id is not None
            else None,
            unlock_seconds=d.unlock_seconds,
            accepts=frozenset(d.accepts or ()),
        )

    for r in await session.scalars(select(Reader).order_by(Reader.id)):
        code, door = doors[r.door_id]
        rkey = (code, door, r.name)
        _unique("reader", rows.readers, rkey, r)
        site.readers[rkey] = ReaderRec(
            facility=code,
            door=door,
            name=r.name,
            panel=panels[r.panel_id].name if r.panel_id is not None else None,
            direction=r.direction,
            contact=r.contact,
            contactless=r.contactless,
            pin_pad=r.pin_pad,
            biometric=r.biometric,
            osdp_address=r.osdp_address,
        )

    level_doors: dict[int, set[tuple[str, str]]] = {}
    for link in await session.scalars(select(AccessLevelDoor)):
        rows.level_doors.setdefault(link.level_id, []).append(link)
        level_doors.setdefault(link.level_id, set()).add(doors[link.door_id])
    level_groups: dict[int, set[str]] = {}
    level_people: dict[int, set[str]] = {}
    for grant_id, level_id, group_id, person_id, ext in await bulk.fetch_all(
        session,
        select(
            AccessGrant.id,
            AccessGrant.level_id,
            AccessGrant.group_id,
            AccessGrant.person_id,
            Person.external_id,
        ).outerjoin(Person, Person.id == AccessGrant.person_id),
    ):
        rows.grants.setdefault(level_id, {})[(group_id, person_id)] = grant_id
        if group_id is not None:
            level_groups.setdefault(level_id, set()).add(group_names[group_id])
        elif person_id is not None:
            level_people.setdefault(level_id, set()).add(_person_ref(person_id, ext))
    for lvl in await session.scalars(select(AccessLevel).order_by(AccessLevel.id)):
        rows.levels[lvl.name] = lvl
        site.levels[lvl.name] = LevelRec(
            lvl.name,
            lvl.description,
            sched_names.get(lvl.schedule_id) if lvl.schedule_id is not None else None,
            frozenset(level_doors.get(lvl.id, ())),
            frozenset(level_groups.get(lvl.id, ())),
            frozenset(level_people.get(lvl.id, ())),
        )
    return site, rows


def threats_of(stored: dict[str, Any] | None) -> ThreatRules:
    """Facility.threat_rules as the site's ThreatRules (the levels it overrides, by rank)."""
    if not stored:
        return ()
    rank = {level: i for i, level in enumerate(("normal", "elevated", "high", "lockdown"))}
    out = []
    for level in sorted(stored, key=lambda lv: rank.get(lv, len(rank))):
        rule = stored[level]
        only = rule.get("only_groups")
        out.append(
            (level, int(rule.get("min_factors", 0)), None if only is None else tuple(sorted(only)))
        )
    return tuple(out)


def threats_json(rules: ThreatRules) -> dict[str, Any] | None:
    """Facility.threat_rules: {level: {"min_factors": n, "only_groups": [names] | None}}."""
    if not rules:
        return None
    return {
        level: {"min_factors": n, "only_groups": None if only is None else list(only)}
        for level, n, only in rules
    }
