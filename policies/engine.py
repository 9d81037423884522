"""evaluate(request, snapshot, presence) -> Decision: the access decision, explained.

Pure: it reads the snapshot and the presence state and returns a decision; the caller
records the decision into the presence state. Checks run cheapest and most decisive first,
and every step that decided something leaves a line in the trail. Lookups are dictionary
and set probes, so the cost does not grow with the number of people or credentials.
"""

from __future__ import annotations

from functools import lru_cache

from policies.decision import AccessRequest, Decision, Reason
from policies.factors import factors_of, missing
from policies.presence import Presence
from policies.schedules import LocalTime, local_time
from policies.snapshot import (
    AccessLevel,
    AreaPolicy,
    CredentialPolicy,
    DoorPolicy,
    PersonPolicy,
    ReaderPolicy,
    Snapshot,
)
from policies.vocabulary import (
    Affiliation,
    AntiPassback,
    AreaClass,
    Direction,
    DoorMode,
    ThreatLevel,
)


class _Eval:
    """One evaluation's facts, gathered as the checks go."""

    __slots__ = ("area", "cred", "door", "local", "person", "reader", "req", "trail")

    def __init__(
        self,
        req: AccessRequest,
        reader: ReaderPolicy,
        door: DoorPolicy,
        area: AreaPolicy | None,
        local: LocalTime,
    ) -> None:
        self.req = req
        self.reader = reader
        self.door = door
        self.area = area
        self.local = local
        self.trail: list[str] = []
        self.cred: CredentialPolicy | None = None
        self.person: PersonPolicy | None = None

    def decide(
        self,
        granted: bool,
        reason: Reason,
        *,
        required: tuple[str, ...] = (),
        violation: str | None = None,
        companions: tuple[int, ...] = (),
        starts_free_access: bool = False,
        may_escort: bool = False,
    ) -> Decision:
        return Decision(
            granted=granted,
            reason=reason,
            required=required,
            trail=tuple(self.trail),
            unlock_seconds=self.door.unlock_seconds if granted else 0,
            reader_id=self.reader.id,
            door_id=self.door.id,
            area_id=self.area.id if self.area else None,
            direction=self.reader.direction,
            person_id=self.person.id if self.person else None,
            credential_id=self.cred.id if self.cred else None,
            violation=violation,
            companions=companions,
            starts_free_access=starts_free_access,
            may_escort=may_escort,
            at=self.req.at,
        )


def evaluate(req: AccessRequest, snap: Snapshot, presence: Presence) -> Decision:
    reader = snap.readers.get(req.reader_id)
    if reader is None:
        return Decision(
            False,
            Reason.UNKNOWN_READER,
            reader_id=req.reader_id,
            trail=(f"reader {req.reader_id} unknown",),
            at=req.at,
        )
    door = snap.doors[reader.door_id]
    facility = snap.facilities[door.facility_id]
    entered = door.area_id if reader.direction is Direction.IN else door.from_area_id
    area = snap.areas.get(entered) if entered is not None else None
    e = _Eval(req, reader, door, area, local_time(req.at, facility.tz))
    e.trail.append(
        f"door {door.id} {door.name!r} {reader.direction.value}, mode "
        f"{door.mode.value}, threat {facility.threat.value}"
    )

    refusal = _credential_and_person(e, snap)
    if refusal is not None:
        return e.decide(False, refusal)
    person = e.person
    assert person is not None

    if door.mode is DoorMode.LOCKED:
        e.trail.append("door is locked")
        return e.decide(False, Reason.DOOR_LOCKED)
    lockdown = door.mode is DoorMode.LOCKDOWN or facility.threat is ThreatLevel.LOCKDOWN
    rule = facility.threat_rules.get(ThreatLevel.LOCKDOWN) if lockdown else facility.rule
    if rule is not None and rule.only_groups is not None and not person.groups & rule.only_groups:
        e.trail.append("the threat level admits only " + _names(snap, rule.only_groups))
        return e.decide(False, Reason.DOOR_LOCKDOWN if lockdown else Reason.THREAT_LEVEL_RESTRICTED)

    free = _free_access(snap, door, e.local, presence)
    if free:
        e.trail.append("door unlocked by its schedule")
        return e.decide(True, Reason.GRANTED_FREE_ACCESS)

    level, why = _level_for(snap, person, door.id, e.local)
    if level is None:
        e.trail.append(why)
        return e.decide(
            False, Reason.OUTSIDE_SCHEDULE if "outside" in why else Reason.NO_ACCESS_LEVEL
        )
    e.trail.append(why)
    return _area_rules(e, snap, presence)


def _credential_and_person(e: _Eval, snap: Snapshot) -> Reason | None:
    req = e.req
    cred = e.cred = snap.credential_by(req.id_kind, req.id_value)
    if cred is None:
        e.trail.append(f"no credential has this {req.id_kind}")
        return Reason.UNKNOWN_CREDENTIAL
    person = e.person = snap.people.get(cred.person_id)
    if not cred.usable:
        e.trail.append(f"credential {cred.id} is {cred.state}")
        return Reason.CREDENTIAL_NOT_ACTIVE
    day = e.local.day
    if day > cred.valid_until:
        e.trail.append(f"credential {cred.id} expired on {cred.valid_until.isoformat()}")
        return Reason.CREDENTIAL_EXPIRED
    if day < cred.valid_from:
        e.trail.append(f"credential {cred.id} is valid from {cred.valid_from.isoformat()}")
        return Reason.CREDENTIAL_NOT_YET_VALID
    if person is None or not person.active:
        e.trail.append(f"person {cred.person_id} is not active")
        return Reason.PERSON_INACTIVE
    if person.eligibility_suspended:
        e.trail.append(f"person {person.id}: eligibility suspended by continuous vetting")
        return Reason.ELIGIBILITY_SUSPENDED
    e.trail.append(f"credential {cred.id} of person {person.id} active")
    return None


def _names(snap: Snapshot, groups: frozenset[int]) -> str:
    return ", ".join(sorted(snap.group_names.get(g, str(g)) for g in groups)) or "nobody"


def _free_access(snap: Snapshot, door: DoorPolicy, local: LocalTime, presence: Presence) -> bool:
    if door.mode is not DoorMode.UNLOCKED_BY_SCHEDULE and door.mode is not DoorMode.FIRST_PERSON_IN:
        return False
    schedule = snap.schedules.get(door.unlock_schedule_id or -1)
    if schedule is None or not schedule.active(local, snap.holidays):
        return False
    if door.mode is DoorMode.UNLOCKED_BY_SCHEDULE:
        return True
    return presence.free_access.get(door.id) == local.day


def _level_for(
    snap: Snapshot, person: PersonPolicy, door_id: int, local: LocalTime
) -> tuple[AccessLevel | None, str]:
    off_schedule: AccessLevel | None = None
    for level_id in snap.levels_of(person):
        level = snap.levels.get(level_id)
        if level is None or door_id not in level.doors:
            continue
        schedule = snap.schedules.get(level.schedule_id)
        if schedule is not None and schedule.active(local, snap.holidays):
            return level, f"access level {level.id} {level.name!r}, schedule {schedule.name!r}"
        off_schedule = level
    if off_schedule is not None:
        return None, f"access level {off_schedule.id} {off_schedule.name!r} is outside its schedule"
    return None, "no access level of this person includes the door"


def _is_visitor(e: _Eval) -> bool:
    assert e.person is not None and e.cred is not None
    return e.person.affiliation is Affiliation.VISITOR or e.cred.temporary


def _area_rules(e: _Eval, snap: Snapshot, presence: Presence) -> Decision:
    person, area, door, now = e.person, e.area, e.door, e.req.at
    assert person is not None

    # Clearance and program read-in gate the area entered (ancestors folded in).
    if area is not None:
        if person.eligibility.rank < area.min_eligibility.rank:
            e.trail.append(
                f"area {area.name!r} needs {area.min_eligibility.value} eligibility, "
                f"person has {person.eligibility.value}"
            )
            return e.decide(False, Reason.INSUFFICIENT_CLEARANCE)
        if area.programs and not area.programs <= person.programs:
            e.trail.append(
                f"area {area.name!r} needs read-in to "
                f"{', '.join(sorted(area.programs - person.programs))}"
            )
            return e.decide(False, Reason.NOT_READ_IN)

    demanded = snap.demanded_factors(door, area)
    proved = factors_of(e.req.evidence)
    lacking = missing(demanded, proved)
    klass = area.area_class if area else "outside"
    if lacking:
        e.trail.append(f"{klass} demands {_join(demanded)}; evidence proves {_join(proved)}")
        return e.decide(False, Reason.FACTORS_MISSING, required=lacking)
    if demanded:
        e.trail.append(f"{klass} demands {_join(demanded)}: proved")

    violation: str | None = None
    inside = snap.areas.get(door.area_id)
    if inside is not None and inside.anti_passback is not AntiPassback.NONE:
        known, where = presence.where(person.id, now, inside.apb_reset_s)
        entering = e.reader.direction is Direction.IN
        broken = known and (
            (entering and where == inside.id) or (not entering and where != inside.id)
        )
        if broken:
            verb = "is already inside" if entering else "never entered"
            e.trail.append(
                f"anti-passback ({inside.anti_passback.value}): person {verb} {inside.name!r}"
            )
            if inside.anti_passback is AntiPassback.HARD:
                return e.decide(False, Reason.ANTI_PASSBACK)
            violation = "anti_passback"

    if area is not None and area.occupancy_limit is not None:
        count = presence.occupancy(area.id)
        already = presence.location.get(person.id, (None,))[0] == area.id
        if count >= area.occupancy_limit and not already:
            e.trail.append(f"{area.name!r} holds {count} of {area.occupancy_limit}")
            return e.decide(False, Reason.OCCUPANCY_FULL)

    companions: tuple[int, ...] = ()
    escort_area = (
        area is not None
        and area.escort_required
        and (area.area_class is not AreaClass.UNRESTRICTED)
    )
    if escort_area and area is not None:
        waiting = presence.waiting_at(door.id, now, area.escort_window_s)
        if _is_visitor(e):
            escorts = [p for p in waiting if p.role == "escort" and p.person_id != person.id]
            if not escorts:
                e.trail.append(
                    f"a visitor needs an authorized escort to badge within {area.escort_window_s} s"
                )
                return e.decide(False, Reason.AWAITING_ESCORT, required=("escort",))
            e.trail.append(f"escorted by person {escorts[-1].person_id}")
        else:
            visitors = tuple(p.person_id for p in waiting if p.role == "visitor")
            if visitors:
                e.trail.append(f"escorting visitor(s) {', '.join(map(str, visitors))}")
                companions = visitors

    if area is not None and area.two_person_window_s:
        firsts = [
            p
            for p in presence.waiting_at(door.id, now, area.two_person_window_s)
            if p.role == "first" and p.person_id != person.id
        ]
        if not firsts:
            e.trail.append(
                f"two-person rule: a second authorized person must badge within "
                f"{area.two_person_window_s} s"
            )
            return e.decide(False, Reason.AWAITING_SECOND_PERSON, required=("second_person",))
        e.trail.append(f"two-person rule met with person {firsts[-1].person_id}")
        companions = (*companions, firsts[-1].person_id)

    starts = door.mode is DoorMode.FIRST_PERSON_IN and _in_unlock_schedule(snap, door, e.local)
    if starts:
        e.trail.append("first person in: the door stays unlocked for its schedule")
    return e.decide(
        True,
        Reason.GRANTED,
        violation=violation,
        companions=companions,
        starts_free_access=starts,
        may_escort=escort_area and not _is_visitor(e),
    )


def _in_unlock_schedule(snap: Snapshot, door: DoorPolicy, local: LocalTime) -> bool:
    schedule = snap.schedules.get(door.unlock_schedule_id or -1)
    return schedule is not None and schedule.active(local, snap.holidays)


@lru_cache(maxsize=64)
def _join(factors: frozenset[object]) -> str:
    return "+".join(sorted(str(f) for f in factors)) or "nothing"
