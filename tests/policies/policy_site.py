"""A small site built straight into a policy snapshot, for the engine's tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from policies.decision import AccessRequest, Decision
from policies.engine import evaluate
from policies.presence import Presence
from policies.schedules import Schedule
from policies.snapshot import (
    AccessLevel,
    AreaPolicy,
    CredentialPolicy,
    DoorPolicy,
    FacilityPolicy,
    IdKind,
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
    Eligibility,
    Mechanism,
)

NY = ZoneInfo("America/New_York")
M = Mechanism
CAK = frozenset({M.PKI_CAK})
AUTH = frozenset({M.PKI_AUTH})
AUTH_BIO = frozenset({M.PKI_AUTH, M.BIO})
CHUID = frozenset({M.CHUID})

# ids
HQ = 1
LOBBY, OFFICES, SCIF = 10, 11, 12
MAIN, CORRIDOR, VAULT, SIDE = 100, 101, 102, 103
MAIN_IN, CORRIDOR_IN, CORRIDOR_OUT, VAULT_IN, VAULT_OUT, SIDE_IN = (
    1000,
    1001,
    1002,
    1003,
    1004,
    1005,
)
BUSINESS, WEEKDAY_MORNING = 20, 21
FEDERAL = 30
SECURITY_GROUP, STAFF_GROUP = 40, 41
LVL_ALL, LVL_BUSINESS, LVL_SCIF = 50, 51, 52

WEEKDAYS_7_TO_19 = tuple(((7 * 60, 19 * 60),) if d < 5 else () for d in range(7))


def site() -> Snapshot:
    s = Snapshot()
    s.facilities[HQ] = FacilityPolicy(HQ, "HQ", NY)
    s.areas[LOBBY] = AreaPolicy(LOBBY, HQ, "Lobby", AreaClass.CONTROLLED)
    s.areas[OFFICES] = AreaPolicy(
        OFFICES, HQ, "Offices", AreaClass.LIMITED, parent_id=LOBBY, anti_passback=AntiPassback.SOFT
    )
    s.areas[SCIF] = AreaPolicy(
        SCIF,
        HQ,
        "SCIF",
        AreaClass.EXCLUSION,
        parent_id=OFFICES,
        is_scif=True,
        min_eligibility=Eligibility.TS_SCI,
        programs=frozenset({"ALPHA"}),
        two_person_window_s=30,
        anti_passback=AntiPassback.HARD,
        occupancy_limit=3,
    )
    s.doors[MAIN] = DoorPolicy(MAIN, HQ, "Main entrance", LOBBY)
    s.doors[CORRIDOR] = DoorPolicy(CORRIDOR, HQ, "Office corridor", OFFICES, from_area_id=LOBBY)
    s.doors[VAULT] = DoorPolicy(VAULT, HQ, "SCIF vestibule", SCIF, from_area_id=OFFICES)
    s.doors[SIDE] = DoorPolicy(
        SIDE,
        HQ,
        "Side door",
        LOBBY,
        mode=DoorMode.FIRST_PERSON_IN,
        unlock_schedule_id=WEEKDAY_MORNING,
    )
    for rid, door, direction in (
        (MAIN_IN, MAIN, Direction.IN),
        (CORRIDOR_IN, CORRIDOR, Direction.IN),
        (CORRIDOR_OUT, CORRIDOR, Direction.OUT),
        (VAULT_IN, VAULT, Direction.IN),
        (VAULT_OUT, VAULT, Direction.OUT),
        (SIDE_IN, SIDE, Direction.IN),
    ):
        s.readers[rid] = ReaderPolicy(rid, door, direction)
    s.schedules[BUSINESS] = Schedule(
        BUSINESS, "business hours", WEEKDAYS_7_TO_19, calendars=frozenset({FEDERAL})
    )
    s.schedules[WEEKDAY_MORNING] = Schedule(
        WEEKDAY_MORNING,
        "weekday mornings",
        tuple(((8 * 60, 12 * 60),) if d < 5 else () for d in range(7)),
    )
    s.holidays.days[FEDERAL] = frozenset({date(2026, 12, 25), date(2027, 1, 1)})
    s.levels[LVL_ALL] = AccessLevel(LVL_ALL, "HQ all hours", frozenset({MAIN, CORRIDOR, SIDE}))
    s.levels[LVL_BUSINESS] = AccessLevel(
        LVL_BUSINESS, "HQ business hours", frozenset({MAIN, CORRIDOR, SIDE}), BUSINESS
    )
    s.levels[LVL_SCIF] = AccessLevel(LVL_SCIF, "SCIF", frozenset({VAULT}))
    s.group_levels[STAFF_GROUP] = frozenset({LVL_BUSINESS})
    s.group_names.update({SECURITY_GROUP: "security", STAFF_GROUP: "staff"})
    return s


def add_person(
    s: Snapshot,
    pid: int,
    *,
    levels: frozenset[int] = frozenset(),
    groups: frozenset[int] = frozenset(),
    affiliation: Affiliation = Affiliation.EMPLOYEE,
    eligibility: Eligibility = Eligibility.NONE,
    programs: frozenset[str] = frozenset(),
    temporary: bool = False,
    valid_until: date = date(2030, 1, 1),
) -> str:
    """Adds a person with one active credential; returns its card UUID."""
    s.put_person(
        PersonPolicy(pid, affiliation, eligibility, programs=programs, groups=groups, levels=levels)
    )
    uuid = f"00000000-0000-4000-8000-{pid:012d}"
    s.put_credential(
        CredentialPolicy(pid * 10, pid, True, date(2024, 1, 1), valid_until, temporary=temporary),
        [(IdKind.CARD_UUID, uuid)],
    )
    return uuid


def at(y: int, mo: int, d: int, h: int, mi: int = 0, tz: ZoneInfo = NY) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)


class Door:
    """Badges at readers and records each decision, as the service does."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.presence = Presence()

    def badge(
        self,
        reader: int,
        card: str,
        when: datetime,
        evidence: frozenset[Mechanism] = AUTH_BIO,
        record: bool = True,
    ) -> Decision:
        d = evaluate(
            AccessRequest(reader, when, IdKind.CARD_UUID, card, evidence), self.snap, self.presence
        )
        if record:
            facility = self.snap.facilities[HQ]
            self.presence.record(d, when, when.astimezone(facility.tz).date())
        return d


__all__ = ["replace"]
