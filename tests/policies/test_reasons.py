"""Decisions in words: every reason code has a sentence, and a denial says the rule that
decided, an off-schedule one with the schedule's hours, its zone and the local time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from policies.decision import Reason
from policies.reasons import SENTENCES, in_words
from policies.schedules import LocalTime, Schedule, ScheduleAt
from tests.policies.policy_site import AUTH, CORRIDOR_IN, STAFF_GROUP, Door, add_person, at, site

NY = ZoneInfo("America/New_York")
WEEKDAYS = tuple(((420, 1140),) if d < 5 else () for d in range(7))


def test_every_reason_code_has_a_sentence() -> None:
    assert set(SENTENCES) == set(Reason)
    assert all(s and s == s.strip() for s in SENTENCES.values())


def test_a_weekend_evening_denial_names_the_schedule_its_hours_and_the_local_time() -> None:
    s = site()
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    # Saturday 5 December 2026, 18:40 in New York.
    d = Door(s).badge(CORRIDOR_IN, card, at(2026, 12, 5, 18, 40), AUTH)
    assert d.reason is Reason.OUTSIDE_SCHEDULE
    assert in_words(d.reason, d.trail) == (
        "outside the schedule (access level 51 'HQ business hours' has schedule "
        "'business hours': Mon-Fri 07:00-19:00 America/New_York; now Sat 18:40)"
    )


def test_a_holiday_denial_says_it_is_a_holiday() -> None:
    s = site()
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    d = Door(s).badge(CORRIDOR_IN, card, at(2026, 12, 25, 10), AUTH)  # Christmas, a Friday
    assert d.reason is Reason.OUTSIDE_SCHEDULE
    assert in_words(d.reason, d.trail).endswith("now Fri 10:00, a holiday (closed))")


def test_a_grant_is_just_granted_and_the_same_badge_in_hours_is_one() -> None:
    s = site()
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    d = Door(s).badge(CORRIDOR_IN, card, at(2026, 12, 7, 10), AUTH)  # Monday 10:00
    assert d.granted
    assert in_words(d.reason, d.trail) == "granted"


def test_what_is_still_required_follows_the_rule() -> None:
    text = in_words("factors_missing", ["door 1", "limited demands 2 factors"], ["pin"])
    assert text == "more authentication is needed (limited demands 2 factors); still required: pin"


def test_a_code_from_elsewhere_is_read_as_it_stands() -> None:
    assert in_words("offline_outside_schedule") == "offline outside schedule"


def test_schedule_hours_group_days_alike() -> None:
    scif = Schedule(
        1,
        "scif",
        tuple(((360, 1200),) if d < 5 else ((480, 720),) if d == 5 else () for d in range(7)),
    )
    assert scif.hours == "Mon-Fri 06:00-20:00, Sat 08:00-12:00"
    split = Schedule(
        2, "reception", tuple(((480, 720), (780, 990)) if d < 5 else () for d in range(7))
    )
    assert split.hours == "Mon-Fri 08:00-12:00 13:00-16:30"
    assert Schedule(3, "never", tuple(() for _ in range(7))).hours == "never"
    always = Schedule(4, "always", tuple(((0, 1440),) for _ in range(7)))
    assert always.hours == "Mon-Sun 00:00-24:00"


def test_a_schedule_at_a_time_reads_as_the_facility_sees_it() -> None:
    shown = ScheduleAt(
        Schedule(1, "business-hours", WEEKDAYS),
        LocalTime(at(2026, 12, 5, 18, 40).date(), 5, 1120),
        NY,
    )
    assert str(shown) == "'business-hours': Mon-Fri 07:00-19:00 America/New_York; now Sat 18:40"
