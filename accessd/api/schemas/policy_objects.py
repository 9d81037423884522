from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Public, Update, VersionedPublic

PolicyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TimeRange = Annotated[str, StringConstraints(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]
#: Day keys as in policy files: mon … sun, ranges like mon-fri, or daily.
Week = dict[Annotated[str, StringConstraints(max_length=7)], list[TimeRange]]
Description = Annotated[str, StringConstraints(max_length=400)]


class ScheduleCreate(Input):
    name: PolicyName
    week: Week
    on_holidays: list[TimeRange] = []
    holiday_calendars: list[PolicyName] = []


class ScheduleUpdate(Update):
    name: PolicyName | None = None
    week: Week | None = None
    on_holidays: list[TimeRange] | None = None
    holiday_calendars: list[PolicyName] | None = None


class SchedulePublic(VersionedPublic):
    name: str
    week: dict[str, list[str]]
    on_holidays: list[str]
    holiday_calendar_ids: list[int]


class CalendarCreate(Input):
    name: PolicyName
    days: dict[date, Annotated[str, StringConstraints(max_length=100)]] = {}


class CalendarPublic(VersionedPublic):
    name: str
    days: dict[date, str]


class CalendarDays(Input):
    days: dict[date, Annotated[str, StringConstraints(max_length=100)]]


class GroupCreate(Input):
    name: PolicyName
    description: Description = ""


class GroupUpdate(Update):
    name: PolicyName | None = None
    description: Description | None = None


class GroupPublic(VersionedPublic):
    name: str
    description: str


class LevelCreate(Input):
    name: PolicyName
    schedule_id: Id | None = Field(default=None, description="None: always")
    description: Description = ""
    door_ids: list[Id] = []


class LevelUpdate(Update):
    nullable = frozenset({"schedule_id"})

    name: PolicyName | None = None
    schedule_id: Id | None = None
    description: Description | None = None
    door_ids: list[Id] | None = None


class LevelPublic(VersionedPublic):
    name: str
    schedule_id: int | None
    description: str
    door_ids: list[int]


class GrantCreate(Input):
    person_id: Id | None = None
    group_id: Id | None = None


class GrantPublic(Public):
    id: int
    level_id: int
    person_id: int | None
    group_id: int | None
