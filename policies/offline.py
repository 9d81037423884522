"""What a panel may decide on its own while accessd is out of reach: the offline cache.

For the doors of one panel: which credentials may open which door under which schedule,
until when, and what each door still demands. Only rules a panel can check alone go into
the cache. A door whose rules need accessd's wider picture (two-person, anti-passback,
occupancy, first person in, a locked or lockdown mode, a threat level that restricts
groups) stays shut offline; a visitor who needs an escort gets no entry for it; clearance
and program read-in are checked here, once, for the door's area.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from policies.schedules import ALWAYS, Interval
from policies.snapshot import AreaPolicy, DoorPolicy, IdKind, PersonPolicy, Snapshot
from policies.vocabulary import Affiliation, AntiPassback, DoorMode

K = TypeVar("K", bound=Hashable)

_ONLINE_ONLY_MODES = frozenset({DoorMode.LOCKED, DoorMode.LOCKDOWN, DoorMode.FIRST_PERSON_IN})


@dataclass(frozen=True, slots=True)
class OfflineDoorRule:
    door_id: int
    factors: int
    offline_allowed: bool


@dataclass(frozen=True, slots=True)
class OfflineWindows:
    """A schedule (or the union of several) as weekly windows and holiday overrides."""

    key: str
    week: tuple[tuple[Interval, ...], ...]
    holiday: tuple[Interval, ...]
    holidays: frozenset[date]


@dataclass(frozen=True, slots=True)
class OfflineGrant:
    """One credential's offline rights: its identifiers, door → schedule key, last day."""

    credential_id: int
    identifiers: tuple[tuple[str, str], ...]
    doors: tuple[tuple[int, str], ...]
    valid_until: date


@dataclass(frozen=True, slots=True)
class OfflineCache:
    timezone: str
    doors: tuple[OfflineDoorRule, ...]
    schedules: tuple[OfflineWindows, ...]
    grants: tuple[OfflineGrant, ...]


def door_rule(snap: Snapshot, door: DoorPolicy) -> OfflineDoorRule:
    """What ``door`` demands offline, and whether it may open at all without accessd."""
    area = snap.areas.get(door.area_id)
    facility = snap.facilities[door.facility_id]
    allowed = door.mode not in _ONLINE_ONLY_MODES and facility.rule.only_groups is None
    for entered in (door.area_id, door.from_area_id):
        a = snap.areas.get(entered) if entered is not None else None
        if a is not None and (
            a.two_person_window_s > 0
            or a.anti_passback is not AntiPassback.NONE
            or a.occupancy_limit is not None
        ):
            allowed = False
    return OfflineDoorRule(door.id, len(snap.demanded_factors(door, area)), allowed)


def _may_enter(person: PersonPolicy, area: AreaPolicy | None) -> bool:
    if area is None:
        return True
    if person.eligibility.rank < area.min_eligibility.rank:
        return False
    if area.programs and not area.programs <= person.programs:
        return False
    return not (person.affiliation is Affiliation.VISITOR and area.escort_required)


def _windows(snap: Snapshot, schedule_ids: frozenset[int]) -> OfflineWindows:
    schedules = [snap.schedules.get(s, ALWAYS) for s in sorted(schedule_ids)]
    key = "+".join(str(s.id) for s in schedules)
    if any(s.id == ALWAYS.id for s in schedules):
        return OfflineWindows("always", ALWAYS.week, ALWAYS.holiday, frozenset())
    week = tuple(_union(s.week[d] for s in schedules) for d in range(7))
    holidays = frozenset(
        day for s in schedules for c in s.calendars for day in snap.holidays.days.get(c, ())
    )
    holiday = _union(s.holiday for s in schedules)
    return OfflineWindows(key, week, holiday, holidays)


def _union(spans: Iterable[tuple[Interval, ...]]) -> tuple[Interval, ...]:
    merged: list[list[int]] = []
    for start, end in sorted(i for group in spans for i in group):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((a, b) for a, b in merged)


def offline_cache(snap: Snapshot, door_ids: Iterable[int], *, today: date) -> OfflineCache:
    """The cache for a panel holding ``door_ids``; credentials that may open none of them,
    or no longer can (not usable, expired before ``today``), are left out."""
    return offline_caches(snap, {0: door_ids}, today=today)[0]


def offline_caches(
    snap: Snapshot, panels: Mapping[K, Iterable[int]], *, today: date
) -> dict[K, OfflineCache]:
    """`offline_cache` for many panels in one pass over the credentials: each credential's
    rights are worked out once, then split by panel (hundreds of panels and a hundred
    thousand credentials must not cost panels times credentials)."""
    doors_of: dict[K, list[DoorPolicy]] = {
        k: [snap.doors[d] for d in sorted(set(ids)) if d in snap.doors] for k, ids in panels.items()
    }
    rules: dict[int, OfflineDoorRule] = {}
    panels_of_door: dict[int, list[K]] = {}
    for k, doors in doors_of.items():
        for d in doors:
            rule = rules.setdefault(d.id, door_rule(snap, d))
            if rule.offline_allowed:
                panels_of_door.setdefault(d.id, []).append(k)
    wanted = set(panels_of_door)
    windows: dict[K, dict[str, OfflineWindows]] = {k: {} for k in panels}
    grants: dict[K, list[OfflineGrant]] = {k: [] for k in panels}
    ids_of = snap.ids_index()
    for cred in snap.credentials.values():
        if not cred.usable or cred.valid_until < today:
            continue
        person = snap.people.get(cred.person_id)
        if person is None or not person.active or person.eligibility_suspended:
            continue
        opened = dict(_doors_for(snap, person, wanted))
        if not opened:
            continue
        identifiers = tuple(p for p in ids_of.get(cred.id, ()) if p[0] in IdKind.ALL)
        if not identifiers:
            continue
        by_panel: dict[K, list[tuple[int, str]]] = {}
        for door_id, schedules in sorted(opened.items()):
            for k in panels_of_door[door_id]:
                win = _windows(snap, frozenset(schedules))
                windows[k].setdefault(win.key, win)
                by_panel.setdefault(k, []).append((door_id, win.key))
        for k, door_keys in by_panel.items():
            grants[k].append(OfflineGrant(cred.id, identifiers, tuple(door_keys), cred.valid_until))
    out: dict[K, OfflineCache] = {}
    for k, doors in doors_of.items():
        tz = str(snap.facilities[doors[0].facility_id].tz) if doors else "UTC"
        w = windows[k]
        out[k] = OfflineCache(
            tz,
            tuple(rules[d.id] for d in doors),
            tuple(w[key] for key in sorted(w)),
            tuple(grants[k]),
        )
    return out


def grant_for(
    snap: Snapshot,
    credential_id: int,
    wanted: set[int],
    windows: dict[str, OfflineWindows],
    *,
    today: date,
) -> OfflineGrant | None:
    """One credential's offline rights at the ``wanted`` doors (None: it opens none of
    them); the schedules it uses are added to ``windows``."""
    cred = snap.credentials.get(credential_id)
    if cred is None or not cred.usable or cred.valid_until < today:
        return None
    person = snap.people.get(cred.person_id)
    if person is None or not person.active or person.eligibility_suspended:
        return None
    opened = dict(_doors_for(snap, person, wanted))
    if not opened:
        return None
    door_keys: list[tuple[int, str]] = []
    for door_id, schedules in sorted(opened.items()):
        win = _windows(snap, frozenset(schedules))
        windows.setdefault(win.key, win)
        door_keys.append((door_id, win.key))
    identifiers = tuple(p for p in snap.ids_index().get(cred.id, ()) if p[0] in IdKind.ALL)
    if not identifiers:
        return None
    return OfflineGrant(cred.id, identifiers, tuple(door_keys), cred.valid_until)


def _doors_for(
    snap: Snapshot, person: PersonPolicy, wanted: set[int]
) -> Iterator[tuple[int, set[int]]]:
    found: dict[int, set[int]] = {}
    for level_id in snap.levels_of(person):
        level = snap.levels.get(level_id)
        if level is None:
            continue
        for door_id in level.doors & wanted:
            door = snap.doors[door_id]
            if _may_enter(person, snap.areas.get(door.area_id)):
                found.setdefault(door_id, set()).add(level.schedule_id)
    yield from found.items()
