"""Builds the policy snapshot from the database with plain Core queries (no ORM objects:
150,000 credentials load in about a second this way) and reloads single records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Area,
    Credential,
    CredentialCertificate,
    Door,
    Facility,
    GroupMember,
    Holiday,
    Person,
    PersonGroup,
    ProgramReadIn,
    Reader,
    Schedule,
    SecurityRecord,
)
from accessd.models.enums import PersonStatus
from policies import schedules as sched
from policies.lifecycle import USABLE_STATES, CredentialKind
from policies.snapshot import (
    DEFAULT_THREAT_RULES,
    AreaPolicy,
    CredentialPolicy,
    DoorPolicy,
    FacilityPolicy,
    IdKind,
    PersonPolicy,
    ReaderPolicy,
    Snapshot,
    ThreatRule,
)
from policies.snapshot import (
    AccessLevel as LevelPolicy,
)
from policies.vocabulary import (
    Affiliation,
    AntiPassback,
    AreaClass,
    Direction,
    DoorMode,
    Eligibility,
    ThreatLevel,
)


async def load_snapshot(session: AsyncSession) -> Snapshot:
    snap = await load_policy(session)
    await _load_people(session, snap, None)
    await _load_credentials(session, snap, None)
    return snap


async def load_policy(session: AsyncSession) -> Snapshot:
    """Facilities, areas, doors, readers, schedules, holidays, levels and groups, in a new
    snapshot whose policy part `Snapshot.adopt_policy` swaps in at once."""
    snap = Snapshot()
    groups = {
        gid: name for gid, name in await session.execute(select(PersonGroup.id, PersonGroup.name))
    }
    by_name = {name: gid for gid, name in groups.items()}
    snap.group_names = groups
    snap.facilities = {}
    for f in (await session.scalars(select(Facility))).all():
        snap.facilities[f.id] = FacilityPolicy(
            f.id,
            f.code,
            ZoneInfo(f.timezone),
            ThreatLevel(f.threat_level),
            threat_rules(f.threat_rules, by_name),
        )
    raw_areas = {a.id: a for a in (await session.scalars(select(Area))).all()}
    snap.areas = {a.id: _area(a, raw_areas) for a in raw_areas.values()}
    area_facility = {a.id: a.facility_id for a in raw_areas.values()}
    snap.doors = {
        d.id: DoorPolicy(
            d.id,
            area_facility[d.area_id],
            d.name,
            d.area_id,
            d.from_area_id,
            DoorMode(d.mode),
            d.unlock_schedule_id,
            d.unlock_seconds,
        )
        for d in (await session.scalars(select(Door))).all()
    }
    snap.readers = {
        rid: ReaderPolicy(rid, door_id, Direction(direction))
        for rid, door_id, direction in await session.execute(
            select(Reader.id, Reader.door_id, Reader.direction)
        )
    }
    snap.schedules = {sched.ALWAYS.id: sched.ALWAYS}
    for s in (await session.scalars(select(Schedule))).all():
        snap.schedules[s.id] = sched.Schedule(
            s.id,
            s.name,
            tuple(tuple((a, b) for a, b in day) for day in s.week),
            tuple((a, b) for a, b in s.holiday),
            frozenset(s.calendar_ids),
        )
    days: dict[int, set[Any]] = defaultdict(set)
    for cal, day in await session.execute(select(Holiday.calendar_id, Holiday.day)):
        days[cal].add(day)
    snap.holidays = sched.HolidayIndex({k: frozenset(v) for k, v in days.items()})
    doors_of: dict[int, set[int]] = defaultdict(set)
    for level_id, door_id in await session.execute(
        select(AccessLevelDoor.level_id, AccessLevelDoor.door_id)
    ):
        doors_of[level_id].add(door_id)
    snap.levels = {
        lid: LevelPolicy(
            lid, name, frozenset(doors_of[lid]), sid if sid is not None else sched.ALWAYS.id
        )
        for lid, name, sid in await session.execute(
            select(AccessLevel.id, AccessLevel.name, AccessLevel.schedule_id)
        )
    }
    group_levels: dict[int, set[int]] = defaultdict(set)
    for level_id, group_id in await session.execute(
        select(AccessGrant.level_id, AccessGrant.group_id).where(AccessGrant.group_id.is_not(None))
    ):
        if group_id is not None:
            group_levels[group_id].add(level_id)
    snap.group_levels = {g: frozenset(v) for g, v in group_levels.items()}
    return snap


def threat_rules(
    stored: dict[str, Any] | None, group_ids: dict[str, int]
) -> dict[ThreatLevel, ThreatRule]:
    rules = dict(DEFAULT_THREAT_RULES)
    for level, rule in (stored or {}).items():
        only = rule.get("only_groups")
        rules[ThreatLevel(level)] = ThreatRule(
            min_factors=int(rule.get("min_factors", 0)),
            only_groups=None
            if only is None
            else frozenset(group_ids[g] for g in only if g in group_ids),
        )
    return rules


def _area(a: Area, all_areas: dict[int, Area]) -> AreaPolicy:
    """Folds the ancestors' clearance and read-in requirements into the area."""
    eligibility = Eligibility(a.min_eligibility)
    programs = set(a.programs or ())
    parent, seen = a.parent_id, {a.id}
    while parent is not None and parent not in seen:
        seen.add(parent)
        up = all_areas[parent]
        if Eligibility(up.min_eligibility).rank > eligibility.rank:
            eligibility = Eligibility(up.min_eligibility)
        programs |= set(up.programs or ())
        parent = up.parent_id
    return AreaPolicy(
        a.id,
        a.facility_id,
        a.name,
        AreaClass(a.area_class),
        a.parent_id,
        a.is_scif,
        eligibility,
        frozenset(programs),
        a.two_person_window_s,
        a.escort_window_s,
        a.escort_required,
        AntiPassback(a.anti_passback),
        a.apb_reset_s,
        a.occupancy_limit,
    )


async def _load_people(session: AsyncSession, snap: Snapshot, ids: Iterable[int] | None) -> None:
    only = list(ids) if ids is not None else None
    stmt = select(
        Person.id,
        Person.affiliation,
        Person.status,
        Person.given_name,
        Person.family_name,
        SecurityRecord.eligibility,
        SecurityRecord.eligibility_suspended,
    ).join(SecurityRecord, SecurityRecord.person_id == Person.id)
    programs: dict[int, set[str]] = defaultdict(set)
    groups: dict[int, set[int]] = defaultdict(set)
    levels: dict[int, set[int]] = defaultdict(set)
    p_stmt = select(ProgramReadIn.person_id, ProgramReadIn.program)
    g_stmt = select(GroupMember.person_id, GroupMember.group_id)
    l_stmt = select(AccessGrant.person_id, AccessGrant.level_id).where(
        AccessGrant.person_id.is_not(None)
    )
    if only is not None:
        stmt = stmt.where(Person.id.in_(only))
        p_stmt = p_stmt.where(ProgramReadIn.person_id.in_(only))
        g_stmt = g_stmt.where(GroupMember.person_id.in_(only))
        l_stmt = l_stmt.where(AccessGrant.person_id.in_(only))
    for pid, program in await session.execute(p_stmt):
        programs[pid].add(program)
    for pid, gid in await session.execute(g_stmt):
        groups[pid].add(gid)
    for grantee, lid in await session.execute(l_stmt):
        if grantee is not None:
            levels[grantee].add(lid)
    empty: frozenset[Any] = frozenset()
    seen: set[int] = set()
    for pid, affiliation, status, given, family, eligibility, suspended in await session.execute(
        stmt
    ):
        seen.add(pid)
        snap.people[pid] = PersonPolicy(
            pid,
            Affiliation(affiliation),
            Eligibility(eligibility),
            bool(suspended),
            status == PersonStatus.ACTIVE,
            frozenset(programs[pid]) if pid in programs else empty,
            frozenset(groups[pid]) if pid in groups else empty,
            frozenset(levels[pid]) if pid in levels else empty,
            f"{given} {family}",
        )
    if only is not None:
        for pid in set(only) - seen:
            snap.people.pop(pid, None)
    snap.version += 1


async def _load_credentials(
    session: AsyncSession, snap: Snapshot, ids: Iterable[int] | None
) -> None:
    only = list(ids) if ids is not None else None
    stmt = select(
        Credential.id,
        Credential.person_id,
        Credential.state,
        Credential.kind,
        Credential.valid_from,
        Credential.valid_until,
        Credential.fasc_n,
        Credential.card_uuid,
        Credential.badge_number,
    )
    c_stmt = select(CredentialCertificate.credential_id, CredentialCertificate.sha256)
    if only is not None:
        stmt = stmt.where(Credential.id.in_(only))
        c_stmt = c_stmt.where(CredentialCertificate.credential_id.in_(only))
    certs: dict[int, list[str]] = defaultdict(list)
    for cid, sha in await session.execute(c_stmt):
        certs[cid].append(sha)
    seen = set()
    temporary = CredentialKind.TEMPORARY.value
    for cid, pid, state, kind, vf, vu, fasc_n, card_uuid, badge in await session.execute(stmt):
        seen.add(cid)
        ids_: list[tuple[str, str]] = []
        if fasc_n:
            ids_.append((IdKind.FASC_N, fasc_n))
        if card_uuid:
            ids_.append((IdKind.CARD_UUID, card_uuid))
        if badge:
            ids_.append((IdKind.BADGE, badge))
        ids_.extend((IdKind.CERT, sha) for sha in certs.get(cid, ()))
        snap.put_credential(
            CredentialPolicy(cid, pid, state in USABLE_STATES, vf, vu, kind == temporary, state),
            ids_,
        )
    if only is not None:
        for cid in set(only) - seen:
            snap.drop_credential(cid)


async def reload_people(session: AsyncSession, snap: Snapshot, ids: Iterable[int]) -> None:
    await _load_people(session, snap, ids)


async def reload_credentials(session: AsyncSession, snap: Snapshot, ids: Iterable[int]) -> None:
    await _load_credentials(session, snap, ids)


async def reload_credentials_of(
    session: AsyncSession, snap: Snapshot, person_ids: Iterable[int]
) -> None:
    people = list(person_ids)
    ids = list(await session.scalars(select(Credential.id).where(Credential.person_id.in_(people))))
    ids += [c.id for c in snap.credentials.values() if c.person_id in set(people)]
    await _load_credentials(session, snap, set(ids))
