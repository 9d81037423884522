"""Builds the policy snapshot from the database with plain Core queries (no ORM objects:
150,000 credentials load in about a second this way) and reloads single records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
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


_AFFILIATION = {a.value: a for a in Affiliation}
_ELIGIBILITY = {e.value: e for e in Eligibility}
_ACTIVE = PersonStatus.ACTIVE.value


def _t(model: type[Any]) -> Any:
    """The Core table of a model: column selects through it skip the ORM's row machinery,
    which costs more than the query for 100,000 rows."""
    return model.__table__


async def _load_people(session: AsyncSession, snap: Snapshot, ids: Iterable[int] | None) -> None:
    only = list(ids) if ids is not None else None
    people, sec = _t(Person), _t(SecurityRecord)
    readins, members, grants = _t(ProgramReadIn), _t(GroupMember), _t(AccessGrant)
    stmt = select(
        people.c.id,
        people.c.affiliation,
        people.c.status,
        sec.c.eligibility,
        sec.c.eligibility_suspended,
    ).join(sec, sec.c.person_id == people.c.id)
    p_stmt = select(readins.c.person_id, readins.c.program)
    g_stmt = select(members.c.person_id, members.c.group_id)
    l_stmt = select(grants.c.person_id, grants.c.level_id).where(grants.c.person_id.is_not(None))
    if only is not None:
        stmt = stmt.where(people.c.id.in_(only))
        p_stmt = p_stmt.where(readins.c.person_id.in_(only))
        g_stmt = g_stmt.where(members.c.person_id.in_(only))
        l_stmt = l_stmt.where(grants.c.person_id.in_(only))
    programs: dict[int, set[str]] = defaultdict(set)
    groups: dict[int, set[int]] = defaultdict(set)
    levels: dict[int, set[int]] = defaultdict(set)
    for pid, program in await bulk.fetch_all(session, p_stmt):
        programs[pid].add(program)
    for pid, gid in await bulk.fetch_all(session, g_stmt):
        groups[pid].add(gid)
    for grantee, lid in await bulk.fetch_all(session, l_stmt):
        levels[grantee].add(lid)
    empty: frozenset[Any] = frozenset()
    # Many people share the same group set: intern the frozensets.
    interned: dict[frozenset[int], frozenset[int]] = {}
    seen: set[int] = set()
    target = snap.people
    for pid, affiliation, status, eligibility, suspended in await bulk.fetch_all(session, stmt):
        seen.add(pid)
        g = groups.get(pid)
        gs = empty if g is None else interned.setdefault(frozenset(g), frozenset(g))
        target[pid] = PersonPolicy(
            pid,
            _AFFILIATION[affiliation],
            _ELIGIBILITY[eligibility],
            bool(suspended),
            status == _ACTIVE,
            frozenset(programs[pid]) if pid in programs else empty,
            gs,
            frozenset(levels[pid]) if pid in levels else empty,
        )
    if only is not None:
        for pid in set(only) - seen:
            target.pop(pid, None)
    snap.version += 1


async def _load_credentials(
    session: AsyncSession, snap: Snapshot, ids: Iterable[int] | None
) -> None:
    only = list(ids) if ids is not None else None
    creds, certs_t = _t(Credential), _t(CredentialCertificate)
    stmt = select(
        creds.c.id,
        creds.c.person_id,
        creds.c.state,
        creds.c.kind,
        creds.c.valid_from,
        creds.c.valid_until,
        creds.c.fasc_n,
        creds.c.card_uuid,
        creds.c.badge_number,
    )
    c_stmt = select(certs_t.c.credential_id, certs_t.c.sha256)
    if only is not None:
        stmt = stmt.where(creds.c.id.in_(only))
        c_stmt = c_stmt.where(certs_t.c.credential_id.in_(only))
    certs: dict[int, list[str]] = defaultdict(list)
    for cid, sha in await bulk.fetch_all(session, c_stmt):
        certs[cid].append(sha)
    rows = await bulk.fetch_all(session, stmt)
    temporary = CredentialKind.TEMPORARY.value
    usable_states = {s.value for s in USABLE_STATES}
    if only is None:
        # The first load fills the indexes directly; put_credential's unindexing of an
        # earlier version is for updates.
        by_fasc, by_uuid, by_badge, by_cert = (
            snap.ids[k] for k in (IdKind.FASC_N, IdKind.CARD_UUID, IdKind.BADGE, IdKind.CERT)
        )
        ids_of = snap.ids_index()
        for cid, pid, state, kind, vf, vu, fasc_n, card_uuid, badge in rows:
            snap.credentials[cid] = CredentialPolicy(
                cid, pid, state in usable_states, vf, vu, kind == temporary, state
            )
            pairs: list[tuple[str, str]] = []
            if fasc_n:
                by_fasc[fasc_n] = cid
                pairs.append((IdKind.FASC_N, fasc_n))
            if card_uuid:
                by_uuid[card_uuid] = cid
                pairs.append((IdKind.CARD_UUID, card_uuid))
            if badge:
                by_badge[badge] = cid
                pairs.append((IdKind.BADGE, badge))
            for sha in certs.get(cid, ()):
                by_cert[sha] = cid
                pairs.append((IdKind.CERT, sha))
            ids_of[cid] = tuple(pairs)
        snap.version += 1
        return
    seen = set()
    for cid, pid, state, kind, vf, vu, fasc_n, card_uuid, badge in rows:
        seen.add(cid)
        pairs = [
            (k, v)
            for k, v in (
                (IdKind.FASC_N, fasc_n),
                (IdKind.CARD_UUID, card_uuid),
                (IdKind.BADGE, badge),
            )
            if v
        ]
        pairs.extend((IdKind.CERT, sha) for sha in certs.get(cid, ()))
        snap.put_credential(
            CredentialPolicy(cid, pid, state in usable_states, vf, vu, kind == temporary, state),
            pairs,
        )
    for cid in set(only) - seen:
        snap.drop_credential(cid)


async def reload_people(session: AsyncSession, snap: Snapshot, ids: Iterable[int]) -> None:
    await _load_people(session, snap, ids)


async def load_policy_and_people(session: AsyncSession) -> Snapshot:
    """The policy part and every person (memberships and grants are stored on the people),
    for `Snapshot.adopt_policy(..., people=True)` to swap in at once."""
    fresh = await load_policy(session)
    await _load_people(session, fresh, None)
    return fresh


async def reload_credentials(session: AsyncSession, snap: Snapshot, ids: Iterable[int]) -> None:
    await _load_credentials(session, snap, ids)


async def reload_credentials_of(
    session: AsyncSession, snap: Snapshot, person_ids: Iterable[int]
) -> None:
    people = list(person_ids)
    ids = list(await session.scalars(select(Credential.id).where(Credential.person_id.in_(people))))
    ids += [c.id for c in snap.credentials.values() if c.person_id in set(people)]
    await _load_credentials(session, snap, set(ids))
