"""The policy file's format (version 1) as pydantic models: what each key may hold.

Names are the natural keys everything is matched by: a facility's code; an area's, door's
and panel's name within its facility; a reader's within its door; schedules, holiday
calendars, groups and access levels by name; people by their `external_id`. References
across facilities are written `CODE/name`. Unknown keys are errors, not ignored, so a typo
never silently drops a rule.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from accessd.models.enums import PanelTransport, ReaderDirection
from accessd.policyfile import times
from policies.schedules import Interval
from policies.vocabulary import (
    AntiPassback,
    AreaClass,
    DoorMode,
    Eligibility,
    Mechanism,
    ThreatLevel,
)

FORMAT_VERSION = 1


def _day_key(key: str) -> str:
    times.days_of(key)
    return key


def _time_range(text: str) -> str:
    times.parse_range(text)
    return text


def _ranges(ranges: list[str]) -> list[str]:
    times.intervals(ranges)
    return ranges


def _code(code: str) -> str:
    if "/" in code or code != code.strip() or " " in code:
        raise ValueError(f"facility code {code!r} may hold no '/' or spaces")
    return code


def _ref(ref: str) -> str:
    code, slash, name = ref.partition("/")
    if not (slash and code and name):
        raise ValueError(f"{ref!r} is not FACILITY/name")
    return ref


Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
SiteName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PanelName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Program = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_code)]
Ref = Annotated[str, AfterValidator(_ref)]
DayKey = Annotated[str, AfterValidator(_day_key)]
TimeRanges = Annotated[list[Annotated[str, AfterValidator(_time_range)]], AfterValidator(_ranges)]
Seconds = Annotated[int, Field(ge=1, le=3600)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScheduleDoc(Strict):
    name: Name
    week: dict[DayKey, TimeRanges] = {}
    holiday_calendars: list[Name] = []
    #: What applies on a holiday of its calendars instead of the weekday (default closed).
    on_holidays: TimeRanges = []

    @field_validator("week")
    @classmethod
    def _each_day_once(cls, week: dict[str, list[str]]) -> dict[str, list[str]]:
        times.week_of(week)
        return week

    @property
    def minutes(self) -> times.Week:
        return times.week_of(self.week)

    @property
    def holiday_minutes(self) -> tuple[Interval, ...]:
        return times.intervals(self.on_holidays)


class HolidayCalendarDoc(Strict):
    name: Name
    days: dict[date, Annotated[str, StringConstraints(max_length=100)]] = {}


class GroupDoc(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=400)] = ""
    members: list[ExternalId] = []


class ThreatOverride(Strict):
    """Changes to a threat level's default rule; keys left out keep the default."""

    min_factors: int = Field(0, ge=0, le=3)
    #: Only members of these groups pass any door; null: everyone may.
    only_groups: list[Name] | None = None


class TwoPerson(Strict):
    window_seconds: Seconds = 30


class Escort(Strict):
    required: bool = True
    window_seconds: Seconds = 30


class AntiPassbackRule(Strict):
    mode: AntiPassback
    #: Forget where people are after this long (timed reset); 0: never.
    reset_minutes: int = Field(0, ge=0, le=7 * 24 * 60)


class AreaDoc(Strict):
    name: SiteName
    area_class: AreaClass = Field(alias="class")
    scif: bool = False
    clearance: Eligibility = Eligibility.NONE
    programs: list[Program] = []
    two_person: TwoPerson | None = None
    escort: Escort = Field(default_factory=Escort)
    anti_passback: AntiPassbackRule | None = None
    occupancy_limit: int | None = Field(None, ge=1)
    areas: list[AreaDoc] = []


class ReaderDoc(Strict):
    name: SiteName
    direction: ReaderDirection = ReaderDirection.IN
    contact: bool = False
    contactless: bool = True
    pin_pad: bool = False
    biometric: bool = False
    osdp_address: int | None = Field(None, ge=0, le=126)


class PanelDoc(Strict):
    name: PanelName
    transport: PanelTransport


class DoorDoc(Strict):
    name: SiteName
    #: The area the door leads into (its "in" readers enter it).
    into: SiteName
    #: The area on the other side; left out: the outside.
    from_area: SiteName | None = Field(None, alias="from")
    panel: PanelName | None = None
    mode: DoorMode = DoorMode.CARD_ONLY
    unlock_schedule: Name | None = None
    unlock_seconds: int = Field(5, ge=1, le=300)
    #: Mechanisms its readers can verify; weighed against what the area demands.
    accepts: list[Mechanism] = []
    readers: list[ReaderDoc] = []


class FacilityDoc(Strict):
    code: Code
    name: SiteName
    timezone: str
    #: ISC facility security level I-V as 1-5.
    security_level: int = Field(ge=1, le=5)
    address: Annotated[str, StringConstraints(max_length=400)] = ""
    threat_levels: dict[ThreatLevel, ThreatOverride] = {}
    areas: list[AreaDoc] = []
    panels: list[PanelDoc] = []
    doors: list[DoorDoc] = []

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {tz!r} (use an IANA name like America/New_York)"
            ) from None
        return tz


class AccessLevelDoc(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=400)] = ""
    #: Left out: always.
    schedule: Name | None = None
    doors: list[Ref] = []
    #: Every door leading into these areas (not into areas nested in them).
    areas: list[Ref] = []
    groups: list[Name] = []
    people: list[ExternalId] = []


class PolicyDocument(Strict):
    version: Literal[1]
    schedules: list[ScheduleDoc] = []
    holiday_calendars: list[HolidayCalendarDoc] = []
    groups: list[GroupDoc] = []
    facilities: list[FacilityDoc] = []
    access_levels: list[AccessLevelDoc] = []


def walk_areas(
    areas: list[AreaDoc], path: tuple[str | int, ...], parent: AreaDoc | None = None
) -> list[tuple[AreaDoc, AreaDoc | None, tuple[str | int, ...]]]:
    """Every area of a tree, parents before children, with its parent and its path."""
    out: list[tuple[AreaDoc, AreaDoc | None, tuple[str | int, ...]]] = []
    for i, area in enumerate(areas):
        here = (*path, i)
        out.append((area, parent, here))
        out.extend(walk_areas(area.areas, (*here, "areas"), area))
    return out
