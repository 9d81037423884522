"""The in-memory picture the engine decides from: people, credentials, doors, areas, access
levels, schedules and threat levels, indexed for O(1) lookups whatever the population.

Built once from the database and then patched record by record as the lifecycle's events
arrive; the engine only reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from zoneinfo import ZoneInfo

from policies.factors import AREA_FACTORS, demanded
from policies.schedules import ALWAYS, HolidayIndex, Schedule
from policies.vocabulary import (
    Affiliation,
    AntiPassback,
    AreaClass,
    Direction,
    DoorMode,
    Eligibility,
    Factor,
    ThreatLevel,
)

_NONE: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ThreatRule:
    """What a threat level changes at every door of a facility."""

    #: At least this many factors (0-3) everywhere, on top of each area's own demand.
    min_factors: int = 0
    #: When set, only members of these groups pass any door.
    only_groups: frozenset[int] | None = None


DEFAULT_THREAT_RULES: dict[ThreatLevel, ThreatRule] = {
    ThreatLevel.NORMAL: ThreatRule(),
    ThreatLevel.ELEVATED: ThreatRule(min_factors=2),
    ThreatLevel.HIGH: ThreatRule(min_factors=3),
    ThreatLevel.LOCKDOWN: ThreatRule(min_factors=3, only_groups=frozenset()),
}


@dataclass(frozen=True, slots=True)
class FacilityPolicy:
    id: int
    code: str
    tz: ZoneInfo
    threat: ThreatLevel = ThreatLevel.NORMAL
    threat_rules: dict[ThreatLevel, ThreatRule] = field(
        default_factory=lambda: dict(DEFAULT_THREAT_RULES)
    )

    #: The rule of the current level, fixed at construction (every decision reads it).
    rule: ThreatRule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rule = self.threat_rules.get(self.threat, DEFAULT_THREAT_RULES[self.threat])
        object.__setattr__(self, "rule", rule)


@dataclass(frozen=True, slots=True)
class AreaPolicy:
    id: int
    facility_id: int
    name: str
    area_class: AreaClass
    parent_id: int | None = None
    is_scif: bool = False
    #: Effective requirements, ancestors' included (the builder folds them in).
    min_eligibility: Eligibility = Eligibility.NONE
    programs: frozenset[str] = frozenset()
    two_person_window_s: int = 0
    escort_window_s: int = 30
    #: Visitors need an escort to enter (SP 800-116 controlled areas and above by default).
    escort_required: bool = True
    anti_passback: AntiPassback = AntiPassback.NONE
    #: Forget where a person is after this long (timed anti-passback reset); 0 = never.
    apb_reset_s: int = 0
    occupancy_limit: int | None = None

    @property
    def factors(self) -> frozenset[Factor]:
        return AREA_FACTORS[self.area_class]


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    id: int
    facility_id: int
    name: str
    #: The area entered through an "in" reader; an "out" reader enters `from_area_id`.
    area_id: int
    from_area_id: int | None = None
    mode: DoorMode = DoorMode.CARD_ONLY
    unlock_schedule_id: int | None = None
    unlock_seconds: int = 5


@dataclass(frozen=True, slots=True)
class ReaderPolicy:
    id: int
    door_id: int
    direction: Direction = Direction.IN


@dataclass(frozen=True, slots=True)
class AccessLevel:
    id: int
    name: str
    doors: frozenset[int]
    schedule_id: int = ALWAYS.id


@dataclass(frozen=True, slots=True)
class PersonPolicy:
    id: int
    affiliation: Affiliation
    eligibility: Eligibility = Eligibility.NONE
    eligibility_suspended: bool = False
    active: bool = True
    programs: frozenset[str] = frozenset()
    groups: frozenset[int] = _NONE
    #: Access levels granted directly (groups add theirs).
    levels: frozenset[int] = _NONE


@dataclass(frozen=True, slots=True)
class CredentialPolicy:
    id: int
    person_id: int
    usable: bool
    valid_from: date
    valid_until: date
    temporary: bool = False
    state: str = "active"


class IdKind:
    FASC_N = "fasc_n"
    CARD_UUID = "card_uuid"
    CERT = "cert_sha256"
    BADGE = "badge_number"
    ALL = (FASC_N, CARD_UUID, CERT, BADGE)


@dataclass
class Snapshot:
    """Everything a decision reads. Mutated only through its `put_*`/`drop_*` methods."""

    facilities: dict[int, FacilityPolicy] = field(default_factory=dict)
    areas: dict[int, AreaPolicy] = field(default_factory=dict)
    doors: dict[int, DoorPolicy] = field(default_factory=dict)
    readers: dict[int, ReaderPolicy] = field(default_factory=dict)
    levels: dict[int, AccessLevel] = field(default_factory=dict)
    schedules: dict[int, Schedule] = field(default_factory=lambda: {ALWAYS.id: ALWAYS})
    holidays: HolidayIndex = field(default_factory=HolidayIndex)
    #: group id -> access level ids the group grants
    group_levels: dict[int, frozenset[int]] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)
    people: dict[int, PersonPolicy] = field(default_factory=dict)
    credentials: dict[int, CredentialPolicy] = field(default_factory=dict)
    #: identifier kind -> identifier -> credential id
    ids: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in IdKind.ALL})
    #: credential id -> its identifiers, to unindex them
    _ids_of: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    version: int = 0

    # -- lookups ------------------------------------------------------------------------

    def credential_by(self, kind: str, value: str) -> CredentialPolicy | None:
        cid = self.ids.get(kind, {}).get(value)
        return None if cid is None else self.credentials.get(cid)

    def levels_of(self, person: PersonPolicy) -> Iterable[int]:
        yield from person.levels
        for g in person.groups:
            yield from self.group_levels.get(g, ())

    def area_entered(self, door: DoorPolicy, direction: Direction) -> int | None:
        return door.area_id if direction is Direction.IN else door.from_area_id

    def demanded_factors(self, door: DoorPolicy, area: AreaPolicy | None) -> frozenset[Factor]:
        """Factors this door demands now: the area's class, the door's mode, the threat."""
        return demanded(
            area.area_class if area is not None else None,
            door.mode is DoorMode.CARD_AND_PIN,
            self.facilities[door.facility_id].rule.min_factors,
        )

    # -- changes ------------------------------------------------------------------------

    def put_credential(
        self, cred: CredentialPolicy, identifiers: Iterable[tuple[str, str]]
    ) -> None:
        self.drop_credential(cred.id)
        self.credentials[cred.id] = cred
        pairs = tuple(identifiers)
        for kind, value in pairs:
            self.ids[kind][value] = cred.id
        self._ids_of[cred.id] = pairs
        self.version += 1

    def ids_index(self) -> dict[int, tuple[tuple[str, str], ...]]:
        """credential id -> the identifiers that index it, for bulk loads that fill `ids`
        themselves and must record what to unindex later."""
        return self._ids_of

    def drop_credential(self, credential_id: int) -> None:
        if self.credentials.pop(credential_id, None) is None:
            return
        for kind, value in self._ids_of.pop(credential_id, ()):
            if self.ids[kind].get(value) == credential_id:
                del self.ids[kind][value]
        self.version += 1

    def set_credential_usable(self, credential_id: int, usable: bool, state: str) -> None:
        cred = self.credentials.get(credential_id)
        if cred is not None:
            self.credentials[credential_id] = replace(cred, usable=usable, state=state)
            self.version += 1

    def adopt_policy(self, other: Snapshot, *, people: bool = False) -> None:
        """Takes the policy part (and with `people`, the people; never the credentials) of
        a freshly loaded snapshot in one step, so no decision sees half of an old policy
        and half of a new one."""
        if people:
            self.people = other.people
        self.facilities, self.areas, self.doors = other.facilities, other.areas, other.doors
        self.readers, self.levels, self.schedules = other.readers, other.levels, other.schedules
        self.holidays, self.group_levels = other.holidays, other.group_levels
        self.group_names = other.group_names
        self.version += 1

    def put_person(self, person: PersonPolicy) -> None:
        self.people[person.id] = person
        self.version += 1

    def set_threat(self, facility_id: int, level: ThreatLevel) -> None:
        self.facilities[facility_id] = replace(self.facilities[facility_id], threat=level)
        self.version += 1
