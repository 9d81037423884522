"""Weekly schedules as written in a policy file: day keys (`mon`, `mon-fri`, `daily`) and
time ranges (`07:00-19:00`), to and from minute intervals (Monday first)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from policies.schedules import Interval, parse_hhmm, validate_intervals

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY = "daily"
Week = tuple[tuple[Interval, ...], ...]


def days_of(key: str) -> tuple[int, ...]:
    """`mon` -> (0,), `mon-fri` -> (0, …, 4), `daily` -> all seven; ValueError otherwise."""
    if key == DAILY:
        return tuple(range(7))
    first, dash, last = key.partition("-")
    if first not in DAYS or (dash and last not in DAYS):
        raise ValueError(f"unknown day {key!r}: use mon … sun, a range like mon-fri, or daily")
    start = DAYS.index(first)
    end = DAYS.index(last) if dash else start
    if end < start:
        raise ValueError(f"day range {key!r} runs backwards: weeks start on mon")
    return tuple(range(start, end + 1))


def parse_range(text: str) -> Interval:
    """`07:00-19:00` -> (420, 1140); `24:00` ends the day."""
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise ValueError(f"time range {text!r} is not HH:MM-HH:MM")
    start, end = parse_hhmm(start_text.strip()), parse_hhmm(end_text.strip())
    if end <= start:
        raise ValueError(
            f"time range {text!r} ends before it starts: a range past midnight is two, "
            f"{start_text.strip()}-24:00 and 00:00-{end_text.strip()} of the next day"
        )
    return start, end


def format_range(span: Interval) -> str:
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in span)


def intervals(ranges: Iterable[str]) -> tuple[Interval, ...]:
    """Parsed, sorted and checked for overlaps (ValueError)."""
    spans = tuple(sorted(parse_range(r) for r in ranges))
    problem = validate_intervals(spans)
    if problem is not None:
        raise ValueError(problem)
    return spans


def week_of(days: Mapping[str, Sequence[str]]) -> Week:
    """Seven interval tuples, Monday first; days not named are closed."""
    week: list[tuple[Interval, ...] | None] = [None] * 7
    for key, ranges in days.items():
        spans = intervals(ranges)
        for d in days_of(key):
            if week[d] is not None:
                raise ValueError(f"{DAYS[d]} is given twice (again in {key!r})")
            week[d] = spans
    return tuple(w or () for w in week)


def render_week(week: Week) -> dict[str, list[str]]:
    """The shortest day keys for a week: `daily`, or runs of equal days like `mon-fri`;
    closed days are left out."""
    if all(w == week[0] for w in week) and week[0]:
        return {DAILY: [format_range(s) for s in week[0]]}
    out: dict[str, list[str]] = {}
    d = 0
    while d < 7:
        end = d
        while end + 1 < 7 and week[end + 1] == week[d]:
            end += 1
        if week[d]:
            key = DAYS[d] if end == d else f"{DAYS[d]}-{DAYS[end]}"
            out[key] = [format_range(s) for s in week[d]]
        d = end + 1
    return out


def describe_week(week: Week) -> str:
    """One line for a diff: `mon-fri 07:00-19:00; sat 08:00-12:00`, or `closed`."""
    parts = [f"{k} {', '.join(v)}" for k, v in render_week(week).items()]
    return "; ".join(parts) or "closed"
