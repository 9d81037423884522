"""The decision engine, scenario by scenario: each row is a badge and its expected answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from policies.decision import Reason
from policies.schedules import Schedule
from policies.snapshot import Snapshot, ThreatRule
from policies.vocabulary import Affiliation, DoorMode, Eligibility, ThreatLevel
from tests.policies.policy_site import (
    AUTH,
    AUTH_BIO,
    BUSINESS,
    CAK,
    CHUID,
    CORRIDOR,
    CORRIDOR_IN,
    CORRIDOR_OUT,
    HQ,
    LVL_ALL,
    LVL_BUSINESS,
    LVL_SCIF,
    MAIN_IN,
    SECURITY_GROUP,
    SIDE_IN,
    STAFF_GROUP,
    VAULT_IN,
    VAULT_OUT,
    Door,
    add_person,
    at,
    site,
)

R = Reason


def test_controlled_area_takes_one_factor_and_chuid_is_none() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    door = Door(s)
    assert door.badge(MAIN_IN, card, at(2026, 3, 2, 9), CAK).reason is R.GRANTED
    d = door.badge(MAIN_IN, card, at(2026, 3, 2, 9), CHUID)
    assert d.reason is R.FACTORS_MISSING and d.required == ("card_authentication",)


def test_limited_area_says_the_pin_is_missing() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    d = Door(s).badge(CORRIDOR_IN, card, at(2026, 3, 2, 9), CAK)
    assert (d.granted, d.reason, d.required) == (False, R.FACTORS_MISSING, ("pin",))
    assert Door(s).badge(CORRIDOR_IN, card, at(2026, 3, 2, 9), AUTH).granted


def test_card_and_pin_door_mode_demands_a_pin_even_into_a_controlled_area() -> None:
    s = site()
    s.doors[100] = replace(s.doors[100], mode=DoorMode.CARD_AND_PIN)
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    assert Door(s).badge(MAIN_IN, card, at(2026, 3, 2, 9), CAK).required == ("pin",)


@pytest.mark.parametrize(
    ("when", "granted", "why"),
    [
        # Spring forward in New York: 2026-03-08 02:00 EST -> 03:00 EDT.
        (at(2026, 3, 6, 18, 59), True, "Friday before, inside 07-19"),
        (at(2026, 3, 9, 6, 59), False, "Monday after the change, one minute early"),
        (at(2026, 3, 9, 7, 0), True, "07:00 local is 11:00 UTC now, not 12:00"),
        (at(2026, 11, 2, 7, 0), True, "after fall back 07:00 local is 12:00 UTC"),
        (at(2026, 11, 2, 19, 0), False, "19:00 is the end, exclusive"),
        (at(2026, 3, 7, 12, 0), False, "Saturday"),
        (at(2026, 12, 25, 10, 0), False, "Christmas (a Friday) is a federal holiday"),
        (at(2026, 12, 24, 10, 0), True, "the day before is not"),
    ],
)
def test_business_hours_in_the_facility_timezone_across_dst_and_holidays(
    when: object, granted: bool, why: str
) -> None:
    s = site()
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    d = Door(s).badge(MAIN_IN, card, when, CAK)  # type: ignore[arg-type]
    assert d.granted is granted, (why, d.trail)
    if not granted:
        assert d.reason is R.OUTSIDE_SCHEDULE


def test_a_schedule_open_on_holidays_uses_its_holiday_hours() -> None:
    s = site()
    s.schedules[BUSINESS] = replace(s.schedules[BUSINESS], holiday=((10 * 60, 14 * 60),))
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    assert Door(s).badge(MAIN_IN, card, at(2026, 12, 25, 11), CAK).granted
    assert not Door(s).badge(MAIN_IN, card, at(2026, 12, 25, 9), CAK).granted


def test_a_door_in_no_level_is_no_access_level() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_SCIF}))
    assert Door(s).badge(MAIN_IN, card, at(2026, 3, 2, 9), CAK).reason is R.NO_ACCESS_LEVEL


def test_threat_level_raised_mid_day_takes_effect_on_the_next_decision() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    boss = add_person(s, 2, levels=frozenset({LVL_ALL}), groups=frozenset({SECURITY_GROUP}))
    door = Door(s)
    morning, noon = at(2026, 3, 2, 9), at(2026, 3, 2, 12)
    assert door.badge(MAIN_IN, card, morning, CAK).granted
    s.set_threat(HQ, ThreatLevel.ELEVATED)  # two factors everywhere
    d = door.badge(MAIN_IN, card, noon, CAK)
    assert d.reason is R.FACTORS_MISSING and d.required == ("pin",)
    assert door.badge(MAIN_IN, card, noon, AUTH).granted
    rules = dict(s.facilities[HQ].threat_rules)
    rules[ThreatLevel.HIGH] = ThreatRule(min_factors=2, only_groups=frozenset({SECURITY_GROUP}))
    s.facilities[HQ] = replace(s.facilities[HQ], threat_rules=rules)
    s.set_threat(HQ, ThreatLevel.HIGH)
    assert door.badge(MAIN_IN, card, noon, AUTH).reason is R.THREAT_LEVEL_RESTRICTED
    assert door.badge(MAIN_IN, boss, noon, AUTH).granted
    s.set_threat(HQ, ThreatLevel.LOCKDOWN)  # default lockdown admits nobody
    assert door.badge(MAIN_IN, boss, noon, AUTH_BIO).reason is R.DOOR_LOCKDOWN
    s.set_threat(HQ, ThreatLevel.NORMAL)
    assert door.badge(MAIN_IN, card, noon, CAK).granted


def test_scif_needs_ts_sci_read_in_three_factors_and_two_people() -> None:
    s = site()
    levels = frozenset({LVL_ALL, LVL_SCIF})
    a = add_person(
        s, 1, levels=levels, eligibility=Eligibility.TS_SCI, programs=frozenset({"ALPHA"})
    )
    b = add_person(
        s, 2, levels=levels, eligibility=Eligibility.TS_SCI, programs=frozenset({"ALPHA", "BRAVO"})
    )
    secret = add_person(
        s, 3, levels=levels, eligibility=Eligibility.SECRET, programs=frozenset({"ALPHA"})
    )
    not_read_in = add_person(s, 4, levels=levels, eligibility=Eligibility.TS_SCI)
    door = Door(s)
    t = at(2026, 3, 2, 9)
    assert door.badge(VAULT_IN, secret, t).reason is R.INSUFFICIENT_CLEARANCE
    assert door.badge(VAULT_IN, not_read_in, t).reason is R.NOT_READ_IN
    d = door.badge(VAULT_IN, a, t, AUTH)
    assert d.reason is R.FACTORS_MISSING and d.required == ("biometric",)
    first = door.badge(VAULT_IN, a, t)
    assert first.reason is R.AWAITING_SECOND_PERSON and first.required == ("second_person",)
    # The same person badging twice is not two people.
    assert door.badge(VAULT_IN, a, t + timedelta(seconds=5)).reason is R.AWAITING_SECOND_PERSON
    second = door.badge(VAULT_IN, b, t + timedelta(seconds=10))
    assert second.granted and 1 in second.companions
    assert door.presence.occupancy(12) == 2


def test_two_person_window_expires() -> None:
    s = site()
    levels = frozenset({LVL_SCIF})
    a = add_person(
        s, 1, levels=levels, eligibility=Eligibility.TS_SCI, programs=frozenset({"ALPHA"})
    )
    b = add_person(
        s, 2, levels=levels, eligibility=Eligibility.TS_SCI, programs=frozenset({"ALPHA"})
    )
    door = Door(s)
    t = at(2026, 3, 2, 9)
    door.badge(VAULT_IN, a, t)
    assert door.badge(VAULT_IN, b, t + timedelta(seconds=31)).reason is R.AWAITING_SECOND_PERSON


def _scif_without_two_person() -> tuple[Snapshot, list[str]]:
    s = site()
    s.areas[12] = replace(s.areas[12], two_person_window_s=0)
    cards = [
        add_person(
            s,
            i,
            levels=frozenset({LVL_SCIF}),
            eligibility=Eligibility.TS_SCI,
            programs=frozenset({"ALPHA"}),
        )
        for i in range(1, 6)
    ]
    return s, cards


def test_occupancy_limit_refuses_the_fourth_until_someone_leaves() -> None:
    s, cards = _scif_without_two_person()
    door = Door(s)
    t = at(2026, 3, 2, 9)
    for i in range(3):
        assert door.badge(VAULT_IN, cards[i], t + timedelta(seconds=i)).granted
    assert door.presence.occupancy(12) == 3
    full = door.badge(VAULT_IN, cards[3], t + timedelta(seconds=4))
    assert full.reason is R.OCCUPANCY_FULL
    assert door.badge(VAULT_OUT, cards[0], t + timedelta(seconds=5), AUTH).granted
    assert door.badge(VAULT_IN, cards[3], t + timedelta(seconds=6)).granted


def test_hard_anti_passback_refuses_entering_twice_and_forgiveness_clears_it() -> None:
    s, cards = _scif_without_two_person()
    door = Door(s)
    t = at(2026, 3, 2, 9)
    assert door.badge(VAULT_IN, cards[0], t).granted
    assert door.badge(VAULT_IN, cards[0], t + timedelta(seconds=5)).reason is R.ANTI_PASSBACK
    # Leaving an area one never entered is a violation too.
    assert door.badge(VAULT_OUT, cards[1], t, AUTH).granted is True  # never seen: unknown
    assert door.badge(VAULT_OUT, cards[1], t + timedelta(seconds=1), AUTH).reason is (
        R.ANTI_PASSBACK
    )
    door.presence.forgive(1)
    assert door.badge(VAULT_IN, cards[0], t + timedelta(seconds=42)).granted


def test_soft_anti_passback_grants_and_reports_and_resets_after_time() -> None:
    s = site()
    s.areas[11] = replace(s.areas[11], apb_reset_s=3600)
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    door = Door(s)
    t = at(2026, 3, 2, 9)
    assert door.badge(CORRIDOR_IN, card, t, AUTH).violation is None
    twice = door.badge(CORRIDOR_IN, card, t + timedelta(minutes=5), AUTH)
    assert twice.granted and twice.violation == "anti_passback"
    later = door.badge(CORRIDOR_IN, card, t + timedelta(hours=2), AUTH)
    assert later.granted and later.violation is None
    assert door.badge(CORRIDOR_OUT, card, t + timedelta(hours=3), CAK).violation is None


@pytest.mark.parametrize("escort_first", [True, False])
def test_visitor_needs_an_escort_within_the_window(escort_first: bool) -> None:
    s = site()
    visitor = add_person(
        s, 1, levels=frozenset({LVL_ALL}), affiliation=Affiliation.VISITOR, temporary=True
    )
    host = add_person(s, 2, levels=frozenset({LVL_ALL}))
    door = Door(s)
    t = at(2026, 3, 2, 9)
    alone = door.badge(MAIN_IN, visitor, t - timedelta(minutes=5), CAK)
    assert alone.reason is R.AWAITING_ESCORT and alone.required == ("escort",)
    if escort_first:
        assert door.badge(MAIN_IN, host, t, CAK).granted
        assert door.badge(MAIN_IN, visitor, t + timedelta(seconds=10), CAK).granted
    else:
        door.badge(MAIN_IN, visitor, t, CAK)
        escorting = door.badge(MAIN_IN, host, t + timedelta(seconds=10), CAK)
        assert escorting.granted and escorting.companions == (1,)
        assert door.presence.location[1][0] == 10


def test_an_escort_does_not_count_after_the_window() -> None:
    s = site()
    visitor = add_person(s, 1, levels=frozenset({LVL_ALL}), affiliation=Affiliation.VISITOR)
    host = add_person(s, 2, levels=frozenset({LVL_ALL}))
    door = Door(s)
    t = at(2026, 3, 2, 9)
    door.badge(MAIN_IN, host, t, CAK)
    assert door.badge(MAIN_IN, visitor, t + timedelta(seconds=31), CAK).reason is R.AWAITING_ESCORT


def test_first_person_in_unlocks_the_door_for_the_rest_of_its_schedule() -> None:
    s = site()
    staff = add_person(s, 1, levels=frozenset({LVL_ALL}))
    other = add_person(s, 2, levels=frozenset({LVL_SCIF}))  # no level for the side door
    door = Door(s)
    early = at(2026, 3, 2, 7, 30)
    assert door.badge(SIDE_IN, other, at(2026, 3, 2, 8, 5), CAK).reason is R.NO_ACCESS_LEVEL
    first = door.badge(SIDE_IN, staff, at(2026, 3, 2, 8, 10), CAK)
    assert first.granted and first.starts_free_access
    assert door.badge(SIDE_IN, other, at(2026, 3, 2, 9), CAK).reason is R.GRANTED_FREE_ACCESS
    # Before the schedule nobody unlocks it; the next day starts locked again.
    assert not door.badge(SIDE_IN, staff, early, CAK).starts_free_access
    assert door.badge(SIDE_IN, other, at(2026, 3, 3, 9), CAK).reason is R.NO_ACCESS_LEVEL


def test_credential_state_validity_and_eligibility_are_always_checked() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_ALL}), valid_until=at(2026, 3, 1, 12).date())
    door = Door(s)
    assert door.badge(MAIN_IN, card, at(2026, 3, 1, 23), CAK).granted  # last local day
    assert door.badge(MAIN_IN, card, at(2026, 3, 2, 0, 1), CAK).reason is R.CREDENTIAL_EXPIRED
    ok = add_person(s, 2, levels=frozenset({LVL_ALL}))
    s.set_credential_usable(20, False, "suspended")
    assert door.badge(MAIN_IN, ok, at(2026, 3, 1, 9), CAK).reason is R.CREDENTIAL_NOT_ACTIVE
    s.set_credential_usable(20, True, "active")
    s.put_person(replace(s.people[2], eligibility_suspended=True))
    assert door.badge(MAIN_IN, ok, at(2026, 3, 1, 9), CAK).reason is R.ELIGIBILITY_SUSPENDED
    assert (
        door.badge(MAIN_IN, "no-such-card", at(2026, 3, 1, 9), CAK).reason is R.UNKNOWN_CREDENTIAL
    )


def test_locked_door_and_unknown_reader() -> None:
    s = site()
    card = add_person(s, 1, levels=frozenset({LVL_ALL}))
    s.doors[CORRIDOR] = replace(s.doors[CORRIDOR], mode=DoorMode.LOCKED)
    assert Door(s).badge(CORRIDOR_IN, card, at(2026, 3, 2, 9)).reason is R.DOOR_LOCKED
    assert Door(s).badge(9999, card, at(2026, 3, 2, 9)).reason is R.UNKNOWN_READER


def test_every_decision_explains_itself() -> None:
    s = site()
    card = add_person(s, 1, groups=frozenset({STAFF_GROUP}))
    d = Door(s).badge(CORRIDOR_IN, card, at(2026, 3, 2, 9), AUTH)
    assert d.granted
    text = "\n".join(d.trail)
    assert "Office corridor" in text and "business hours" in text and "limited demands" in text
    assert d.unlock_seconds == 5


__all__ = ["LVL_BUSINESS", "Schedule"]
