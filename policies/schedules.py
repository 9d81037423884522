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
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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

    @property
    def hours(self) -> str:
        """The week in words: "Mon-Fri 07:00-19:00, Sat 08:00-12:00" ("never" when empty)."""
        parts: list[str] = []
        day = 0
        while day < 7:
            last = day
            while last + 1 < 7 and self.week[last + 1] == self.week[day]:
                last += 1
            if self.week[day]:
                days = DAY_NAMES[day] if last == day else f"{DAY_NAMES[day]}-{DAY_NAMES[last]}"
                parts.append(f"{days} {spans_text(self.week[day])}")
            day = last + 1
        return ", ".join(parts) or "never"


ALWAYS = Schedule(
    0, "always", tuple(((0, MINUTES_PER_DAY),) for _ in range(7)), holiday=((0, MINUTES_PER_DAY),)
)


@dataclass(frozen=True, slots=True)
class LocalTime:
    day: date
    weekday: int
    minute: int

    def __str__(self) -> str:
        return f"{DAY_NAMES[self.weekday]} {hhmm(self.minute)}"


@dataclass(frozen=True, slots=True)
class ScheduleAt:
    """A schedule and the local time it was asked about, put in words only when formatted:
    a decision's trail keeps it as is until someone reads the trail."""

    schedule: Schedule
    local: LocalTime
    tz: ZoneInfo
    #: The day is a holiday of one of the schedule's calendars (its holiday hours apply).
    holiday: bool = False

    def __str__(self) -> str:
        now = str(self.local)
        if self.holiday:
            now += f", a holiday ({spans_text(self.schedule.holiday) or 'closed'})"
        return f"{self.schedule.name!r}: {self.schedule.hours} {self.tz.key}; now {now}"


def hhmm(minute: int) -> str:
    """450 -> '07:30'; 1440 -> '24:00'."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def spans_text(spans: tuple[Interval, ...]) -> str:
    """((420, 720), (780, 1020)) -> '07:00-12:00 13:00-17:00'."""
    return " ".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in spans)


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
