"""The offline cache a panel decides from: exactly who may open which of its doors, under
which schedule, until when; doors whose rules need accessd stay shut offline."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from policies.offline import offline_cache, offline_caches
from policies.snapshot import DoorPolicy
from policies.vocabulary import Affiliation, DoorMode, Eligibility
from tests.policies.policy_site import (
    BUSINESS,
    CORRIDOR,
    LVL_ALL,
    LVL_SCIF,
    MAIN,
    SIDE,
    STAFF_GROUP,
    VAULT,
    add_person,
    site,
)

TODAY = date(2026, 12, 1)
MAIN_AREA = site().doors[MAIN].area_id


def _grants(cache):  # type: ignore[no-untyped-def]
    return {g.credential_id: dict(g.doors) for g in cache.grants}


def test_the_cache_holds_exactly_who_may_open_the_panels_doors() -> None:
    s = site()
    add_person(s, 1, levels=frozenset({LVL_ALL}))
    add_person(s, 2, groups=frozenset({STAFF_GROUP}))
    add_person(s, 3)  # no access level at all
    add_person(s, 4, levels=frozenset({LVL_ALL}), valid_until=date(2026, 11, 30))  # expired
    cache = offline_cache(s, [MAIN, CORRIDOR, SIDE, VAULT], today=TODAY)
    grants = _grants(cache)
    # Corridor (soft anti-passback), the first-person-in side door and the SCIF (two-person,
    # hard anti-passback, occupancy) need accessd: nobody gets them offline.
    assert grants == {10: {MAIN: "always"}, 20: {MAIN: str(BUSINESS)}}
    rules = {r.door_id: (r.factors, r.offline_allowed) for r in cache.doors}
    assert rules == {
        MAIN: (1, True),
        CORRIDOR: (2, False),
        SIDE: (1, False),
        VAULT: (3, False),
    }
    business = next(w for w in cache.schedules if w.key == str(BUSINESS))
    assert business.week[0] == ((7 * 60, 19 * 60),) and business.week[6] == ()
    assert date(2026, 12, 25) in business.holidays and business.holiday == ()
    assert cache.timezone == "America/New_York"
    assert all(g.identifiers for g in cache.grants)


def test_suspension_revocation_and_clearance_leave_people_out() -> None:
    s = site()
    cleared = add_person(s, 1, levels=frozenset({LVL_ALL}))
    add_person(s, 2, levels=frozenset({LVL_ALL}))
    assert cleared
    s.set_credential_usable(20, False, "suspended")
    s.put_person(replace(s.people[1], eligibility_suspended=True))
    assert _grants(offline_cache(s, [MAIN], today=TODAY)) == {}


def test_a_visitor_needing_an_escort_gets_no_offline_entry() -> None:
    s = site()
    add_person(s, 1, levels=frozenset({LVL_ALL}), affiliation=Affiliation.VISITOR)
    add_person(s, 2, levels=frozenset({LVL_ALL}))
    assert set(_grants(offline_cache(s, [MAIN], today=TODAY))) == {20}


def test_clearance_is_checked_once_for_the_doors_area() -> None:
    s = site()
    # A SCIF door without the online-only rules, to see the clearance check alone.
    s.areas[s.doors[VAULT].area_id] = replace(
        s.areas[s.doors[VAULT].area_id],
        two_person_window_s=0,
        anti_passback=s.areas[s.doors[MAIN].area_id].anti_passback,
        occupancy_limit=None,
    )
    offices = s.doors[VAULT].from_area_id
    assert offices is not None
    s.areas[offices] = replace(s.areas[offices], anti_passback=s.areas[MAIN_AREA].anti_passback)
    add_person(s, 1, levels=frozenset({LVL_SCIF}), eligibility=Eligibility.TS_SCI)
    add_person(
        s,
        2,
        levels=frozenset({LVL_SCIF}),
        eligibility=Eligibility.TS_SCI,
        programs=frozenset({"ALPHA"}),
    )
    assert _grants(offline_cache(s, [VAULT], today=TODAY)) == {20: {VAULT: "always"}}


def test_a_locked_door_and_a_restricted_threat_level_stay_shut_offline() -> None:
    s = site()
    add_person(s, 1, levels=frozenset({LVL_ALL}))
    s.doors[MAIN] = DoorPolicy(
        MAIN, s.doors[MAIN].facility_id, "Main", s.doors[MAIN].area_id, mode=DoorMode.LOCKED
    )
    cache = offline_cache(s, [MAIN], today=TODAY)
    assert cache.grants == () and not cache.doors[0].offline_allowed


def test_many_panels_in_one_pass_equal_each_panel_on_its_own() -> None:
    s = site()
    add_person(s, 1, levels=frozenset({LVL_ALL}))
    add_person(s, 2, groups=frozenset({STAFF_GROUP}))
    add_person(s, 3, levels=frozenset({LVL_SCIF}), eligibility=Eligibility.TS_SCI)
    panels = {"a": [MAIN], "b": [MAIN, CORRIDOR], "c": [SIDE, VAULT], "d": []}
    together = offline_caches(s, panels, today=TODAY)
    assert together == {k: offline_cache(s, doors, today=TODAY) for k, doors in panels.items()}
    assert together["b"].grants and not together["d"].grants
