"""evaluate(request, snapshot, presence) -> Decision: the access decision, explained.

Pure: it reads the snapshot and the presence state and returns a decision; the caller
records the decision into the presence state. Checks run cheapest and most decisive first.
Every step that decided something leaves a (template, arguments) line, formatted only when
someone reads the decision's trail; a check that refuses returns its `Reason` beside that
line, so no reason is ever read back from a line's template. Lookups are dictionary and
set probes, so the cost does not grow with the number of people or credentials.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

from policies.decision import AccessRequest, Decision, Reason, Step
from policies.factors import factors_of, missing
from policies.presence import Presence
from policies.schedules import LocalTime, ScheduleAt, local_time
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

_IN = Direction.IN
_LOCKED, _LOCKDOWN, _PIN = DoorMode.LOCKED, DoorMode.LOCKDOWN, DoorMode.CARD_AND_PIN
_FREE_MODES = frozenset({DoorMode.UNLOCKED_BY_SCHEDULE, DoorMode.FIRST_PERSON_IN})
_THREAT_LOCKDOWN = ThreatLevel.LOCKDOWN


class _Eval:
    """One evaluation's facts, gathered as the checks go."""

    __slots__ = ("area", "cred", "door", "local", "person", "reader", "req", "steps")

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
        self.steps: list[Step] = []
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
        area, person, cred = self.area, self.person, self.cred
        return Decision(
            granted,
            reason,
            required,
            self.door.unlock_seconds if granted else 0,
            tuple(self.steps),
            self.reader.id,
            self.door.id,
            area.id if area else None,
            self.reader.direction,
            person.id if person else None,
            cred.id if cred else None,
            violation,
            companions,
            starts_free_access,
            may_escort,
            self.req.at,
        )


def evaluate(req: AccessRequest, snap: Snapshot, presence: Presence) -> Decision:
    reader = snap.readers.get(req.reader_id)
    if reader is None:
        return Decision(
            False,
            Reason.UNKNOWN_READER,
            reader_id=req.reader_id,
            steps=(("reader {} unknown", req.reader_id),),
            at=req.at,
        )
    door = snap.doors[reader.door_id]
    facility = snap.facilities[door.facility_id]
    entered = door.area_id if reader.direction is _IN else door.from_area_id
    area = snap.areas.get(entered) if entered is not None else None
    e = _Eval(req, reader, door, area, local_time(req.at, facility.tz))
    steps = e.steps
    steps.append(
        (
            "door {} {!r} {}, mode {}, threat {}",
            door.id,
            door.name,
            reader.direction,
            door.mode,
            facility.threat,
        )
    )

    if req.authn_failure is not None:
        # Identity claims of a card that failed authentication are not worth checking.
        steps.append(("card authentication failed: {}", req.authn_failure))
        return e.decide(False, Reason.AUTHENTICATION_FAILED)
    if req.authn_proven is not None:
        steps.append(("card authenticated: {}", req.authn_proven))

    refusal = _credential_and_person(e, snap)
    if refusal is not None:
        return e.decide(False, refusal)
    person = e.person
    assert person is not None

    if door.mode is _LOCKED:
        steps.append(("door is locked",))
        return e.decide(False, Reason.DOOR_LOCKED)
    lockdown = door.mode is _LOCKDOWN or facility.threat is _THREAT_LOCKDOWN
    rule = facility.threat_rules.get(_THREAT_LOCKDOWN) if lockdown else facility.rule
    if rule is not None and rule.only_groups is not None and not person.groups & rule.only_groups:
        steps.append(("the threat level admits only {}", _names(snap, rule.only_groups)))
        return e.decide(False, Reason.DOOR_LOCKDOWN if lockdown else Reason.THREAT_LEVEL_RESTRICTED)

    if door.mode in _FREE_MODES and _free_access(snap, door, e.local, presence):
        steps.append(("door unlocked by its schedule",))
        return e.decide(True, Reason.GRANTED_FREE_ACCESS)

    refusal = _access_level(e, snap, person, facility.tz)
    if refusal is not None:
        return e.decide(False, refusal)
    return _area_rules(e, snap, presence)


def _credential_and_person(e: _Eval, snap: Snapshot) -> Reason | None:
    req, steps = e.req, e.steps
    cred = e.cred = snap.credential_by(req.id_kind, req.id_value)
    if cred is None:
        steps.append(("no credential has this {}", req.id_kind))
        return Reason.UNKNOWN_CREDENTIAL
    person = e.person = snap.people.get(cred.person_id)
    if not cred.usable:
        steps.append(("credential {} is {}", cred.id, cred.state))
        return Reason.CREDENTIAL_NOT_ACTIVE
    day = e.local.day
    if day > cred.valid_until:
        steps.append(("credential {} expired on {}", cred.id, cred.valid_until))
        return Reason.CREDENTIAL_EXPIRED
    if day < cred.valid_from:
        steps.append(("credential {} is valid from {}", cred.id, cred.valid_from))
        return Reason.CREDENTIAL_NOT_YET_VALID
    if person is None or not person.active:
        steps.append(("person {} is not active", cred.person_id))
        return Reason.PERSON_INACTIVE
    if person.eligibility_suspended:
        steps.append(("person {}: eligibility suspended by continuous vetting", person.id))
        return Reason.ELIGIBILITY_SUSPENDED
    steps.append(("credential {} of person {} active", cred.id, person.id))
    return None


def _names(snap: Snapshot, groups: frozenset[int]) -> str:
    return ", ".join(sorted(snap.group_names.get(g, str(g)) for g in groups)) or "nobody"


def _free_access(snap: Snapshot, door: DoorPolicy, local: LocalTime, presence: Presence) -> bool:
    if not _in_unlock_schedule(snap, door, local):
        return False
    if door.mode is DoorMode.UNLOCKED_BY_SCHEDULE:
        return True
    return presence.free_access.get(door.id) == local.day


def _in_unlock_schedule(snap: Snapshot, door: DoorPolicy, local: LocalTime) -> bool:
    schedule = snap.schedules.get(door.unlock_schedule_id or -1)
    return schedule is not None and schedule.active(local, snap.holidays)


def _access_level(e: _Eval, snap: Snapshot, person: PersonPolicy, tz: ZoneInfo) -> Reason | None:
    """Finds a level of the person's that opens the door now; the refusal when none does."""
    local, steps = e.local, e.steps
    off_schedule: AccessLevel | None = None
    levels, schedules = snap.levels, snap.schedules
    for level_id in snap.levels_of(person):
        level = levels.get(level_id)
        if level is None or e.door.id not in level.doors:
            continue
        schedule = schedules.get(level.schedule_id)
        if schedule is not None and schedule.active(local, snap.holidays):
            steps.append(
                ("access level {} {!r}, schedule {!r}", level.id, level.name, schedule.name)
            )
            return None
        off_schedule = level
    if off_schedule is None:
        steps.append(("no access level of this person includes the door",))
        return Reason.NO_ACCESS_LEVEL
    # The schedule and the time as the facility saw them, so the denial says why.
    schedule = schedules.get(off_schedule.schedule_id)
    shown: object = "none on record"
    if schedule is not None:
        holiday = bool(schedule.calendars) and snap.holidays.is_holiday(
            schedule.calendars, local.day
        )
        shown = ScheduleAt(schedule, local, tz, holiday)
    steps.append(
        ("access level {} {!r} has schedule {}", off_schedule.id, off_schedule.name, shown)
    )
    return Reason.OUTSIDE_SCHEDULE


def _is_visitor(e: _Eval) -> bool:
    assert e.person is not None and e.cred is not None
    return e.person.affiliation is Affiliation.VISITOR or e.cred.temporary


def _area_rules(e: _Eval, snap: Snapshot, presence: Presence) -> Decision:
    person, area, door, now, steps = e.person, e.area, e.door, e.req.at, e.steps
    assert person is not None

    # Clearance and program read-in gate the area entered (ancestors folded in).
    if area is not None:
        if person.eligibility.rank < area.min_eligibility.rank:
            steps.append(
                (
                    "area {!r} needs {} eligibility, person has {}",
                    area.name,
                    area.min_eligibility,
                    person.eligibility,
                )
            )
            return e.decide(False, Reason.INSUFFICIENT_CLEARANCE)
        if area.programs and not area.programs <= person.programs:
            steps.append(
                (
                    "area {!r} needs read-in to {}",
                    area.name,
                    ", ".join(sorted(area.programs - person.programs)),
                )
            )
            return e.decide(False, Reason.NOT_READ_IN)

    demanded = snap.demanded_factors(door, area)
    if demanded:
        proved = factors_of(e.req.evidence)
        lacking = missing(demanded, proved)
        klass = area.area_class if area else "outside"
        if lacking:
            steps.append(
                ("{} demands {}; evidence proves {}", klass, _join(demanded), _join(proved))
            )
            return e.decide(False, Reason.FACTORS_MISSING, required=lacking)
        steps.append(("{} demands {}: proved", klass, _join(demanded)))

    violation: str | None = None
    inside = snap.areas.get(door.area_id)
    if inside is not None and inside.anti_passback is not AntiPassback.NONE:
        known, where = presence.where(person.id, now, inside.apb_reset_s)
        entering = e.reader.direction is _IN
        broken = known and (
            (entering and where == inside.id) or (not entering and where != inside.id)
        )
        if broken:
            verb = "is already inside" if entering else "never entered"
            steps.append(
                ("anti-passback ({}): person {} {!r}", inside.anti_passback, verb, inside.name)
            )
            if inside.anti_passback is AntiPassback.HARD:
                return e.decide(False, Reason.ANTI_PASSBACK)
            violation = "anti_passback"

    if area is not None and area.occupancy_limit is not None:
        count = presence.occupancy(area.id)
        already = presence.location.get(person.id, (None,))[0] == area.id
        if count >= area.occupancy_limit and not already:
            steps.append(("{!r} holds {} of {}", area.name, count, area.occupancy_limit))
            return e.decide(False, Reason.OCCUPANCY_FULL)

    companions: tuple[int, ...] = ()
    escort_area = (
        area is not None
        and area.escort_required
        and (area.area_class is not AreaClass.UNRESTRICTED)
    )
    visitor = escort_area and _is_visitor(e)
    if escort_area and area is not None:
        waiting = presence.waiting_at(door.id, now, area.escort_window_s)
        if visitor:
            escorts = [p for p in waiting if p.role == "escort" and p.person_id != person.id]
            if not escorts:
                steps.append(
                    (
                        "a visitor needs an authorized escort to badge within {} s",
                        area.escort_window_s,
                    )
                )
                return e.decide(False, Reason.AWAITING_ESCORT, required=("escort",))
            steps.append(("escorted by person {}", escorts[-1].person_id))
        else:
            visitors = tuple(p.person_id for p in waiting if p.role == "visitor")
            if visitors:
                steps.append(("escorting visitor(s) {}", ", ".join(map(str, visitors))))
                companions = visitors

    if area is not None and area.two_person_window_s:
        firsts = [
            p
            for p in presence.waiting_at(door.id, now, area.two_person_window_s)
            if p.role == "first" and p.person_id != person.id
        ]
        if not firsts:
            steps.append(
                (
                    "two-person rule: a second authorized person must badge within {} s",
                    area.two_person_window_s,
                )
            )
            return e.decide(False, Reason.AWAITING_SECOND_PERSON, required=("second_person",))
        steps.append(("two-person rule met with person {}", firsts[-1].person_id))
        companions = (*companions, firsts[-1].person_id)

    starts = door.mode is DoorMode.FIRST_PERSON_IN and _in_unlock_schedule(snap, door, e.local)
    if starts:
        steps.append(("first person in: the door stays unlocked for its schedule",))
    return e.decide(
        True,
        Reason.GRANTED,
        violation=violation,
        companions=companions,
        starts_free_access=starts,
        may_escort=escort_area and not visitor,
    )


@lru_cache(maxsize=64)
def _join(factors: frozenset[object]) -> str:
    return "+".join(sorted(str(f) for f in factors)) or "nothing"
