"""Weekly schedules in a facility's own timezone, with holiday calendars that override them.

A schedule is a set of intervals per weekday in local wall-clock minutes (0-1440). An
instant is turned into local time with the facility's zoneinfo, so daylight-saving changes
need no special case: on the spring-forward day 02:30 never happens, on the fall-back day
01:30 happens twice and is inside an 01:00-02:00 interval both times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

Interval = tuple[int, int]  # [start, end) minutes after local midnight

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    name: str
    #: weekday (0 = Monday) -> intervals
    week: tuple[tuple[Interval, ...], ...]
    #: intervals that apply on holidays instead of the weekday's (empty: closed)
    holiday: tuple[Interval, ...] = ()
    #: holiday calendar ids whose days override the week
    calendars: frozenset[int] = field(default_factory=frozenset)

    def active(self, local: LocalTime, holidays: HolidayIndex) -> bool:
        if self.calendars and holidays.is_holiday(self.calendars, local.day):
            spans = self.holiday
        else:
            spans = self.week[local.weekday]
        m = local.minute
        return any(a <= m < b for a, b in spans)


ALWAYS = Schedule(
    0, "always", tuple(((0, MINUTES_PER_DAY),) for _ in range(7)), holiday=((0, MINUTES_PER_DAY),)
)


@dataclass(frozen=True, slots=True)
class LocalTime:
    day: date
    weekday: int
    minute: int


_LOCAL_CACHE: dict[tuple[object, ...], LocalTime] = {}


def local_time(now: datetime, tz: ZoneInfo) -> LocalTime:
    """Local date, weekday and minute of an aware instant; memoised per minute, since every
    decision in the same minute at the same facility asks the same question. The key is the
    instant's own fields (with its offset), cheaper than computing a timestamp."""
    key = (tz, now.utcoffset(), now.year, now.month, now.day, now.hour, now.minute)
    hit = _LOCAL_CACHE.get(key)
    if hit is not None:
        return hit
    local = now.astimezone(tz)
    result = LocalTime(local.date(), local.weekday(), local.hour * 60 + local.minute)
    if len(_LOCAL_CACHE) > 4096:
        _LOCAL_CACHE.clear()
    _LOCAL_CACHE[key] = result
    return result


@dataclass
class HolidayIndex:
    """calendar id -> set of dates."""

    days: dict[int, frozenset[date]] = field(default_factory=dict)

    def is_holiday(self, calendars: frozenset[int], day: date) -> bool:
        return any(day in self.days.get(c, ()) for c in calendars)


def validate_intervals(spans: tuple[Interval, ...]) -> str | None:
    """Why the intervals are malformed, or None."""
    last_end = -1
    for start, end in sorted(spans):
        if not (0 <= start < end <= MINUTES_PER_DAY):
            return f"interval {start}-{end} is not within one day"
        if start < last_end:
            return "intervals overlap"
        last_end = end
    return None


def parse_hhmm(text: str) -> int:
    """'07:30' -> 450; '24:00' is the end of the day."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"time {text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"time {text!r} is not a time of day")
    return value
