"""Policies of several files, the access impact of a change before it is applied, and the
SP 800-116 compliance report of the stored policy, on both databases and from the command
line."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.errors import NotFound
from accessd.events import PolicyChanged
from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Area,
    AuditEntry,
    Door,
    Facility,
    GroupMember,
    Holiday,
    Panel,
    Person,
    PersonGroup,
    PolicyVersion,
    ProgramReadIn,
    Reader,
    Schedule,
    SecurityRecord,
)
from accessd.policyfile import PolicyRejected, apply, parse_all, rollback
from accessd.policyfile.combine import pack, unpack
from accessd.policyfile.compliance import FacilityReport, report
from accessd.policyfile.impact import AreaAccess, PersonRef, impact, preview
from accessd.policyfile.site import Site, from_document
from policies.reach import compare, reach
from policies.snapshot import PersonPolicy, Snapshot
from policies.vocabulary import Affiliation, Direction, DoorMode, Eligibility
from tests.conftest import Recorder
from tests.policies import policy_site as ps
from tests.service.policy.test_policy_files import (
    EXAMPLES,
    FIELD,
    HQ,
    cli,
    count,
    edit,
    line_of,
    site_in,
)

ACTOR = "cli:test"
#: The two examples: one deployment of an HQ with a SCIF and a field office.
BOTH = [("hq.yaml", HQ), ("field-office.yaml", FIELD)]
#: A field office that defines HQ's holiday calendar again, which two files may not.
CLASHING = edit(FIELD, "  - name: denver-office-closures", "  - name: us-federal").replace(
    "[denver-office-closures]", "[us-federal]"
)

#: external_id -> (given name, family name, eligibility, programs).
PEOPLE: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "E1001": ("Avery", "Stone", "none", ()),
    "E1002": ("Blake", "Ortiz", "secret", ()),
    "E1003": ("Casey", "Lindqvist", "ts_sci", ("ALPHA",)),
    "E1004": ("Devon", "Price", "top_secret", ()),
    "E1005": ("Emery", "Shah", "secret", ()),
    "E2001": ("Finley", "Okafor", "ts_sci", ("ALPHA",)),
    "E2002": ("Gray", "Novak", "ts_sci", ("ALPHA",)),
    "E3001": ("Harper", "Quinn", "ts_sci", ("ALPHA",)),
    "E5001": ("Indigo", "Reyes", "none", ()),
    "E5002": ("Jules", "Moreau", "secret", ()),
    "E5003": ("Kai", "Tanaka", "secret", ("BRAVO",)),
}


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """The people the examples name, with security records and read-ins; external_id -> id."""
    ids = {}
    async with sessions() as s:
        for ext, (given, family, eligibility, programs) in PEOPLE.items():
            person = Person(
                external_id=ext, given_name=given, family_name=family, affiliation="employee"
            )
            s.add(person)
            await s.flush()
            s.add(SecurityRecord(person_id=person.id, eligibility=eligibility))
            s.add_all(ProgramReadIn(person_id=person.id, program=p) for p in programs)
            ids[ext] = person.id
        await s.commit()
    return ids


async def apply_parts(
    sessions: async_sessionmaker[AsyncSession], parts: list[tuple[str, str]]
) -> PolicyVersion | None:
    async with sessions() as s:
        done = await apply(s, ACTOR, parse_all(parts))
        await s.commit()
        return done.version


def site_of_parts(parts: list[tuple[str, str]]) -> Site:
    policy = parse_all(parts)
    assert policy.errors == [] and policy.document is not None
    return from_document(policy.document)


# -- several files ----------------------------------------------------------------------------

SITE_FILE = """\
version: 1
groups:
  - name: staff
facilities:
  - code: LAB
    name: Laboratory
    timezone: America/Chicago
    security_level: 2
    areas:
      - {name: Hall, class: controlled}
    doors:
      - {name: Front, into: Hall, accepts: [pki_cak], readers: [{name: Front in}]}
"""

LEVELS_FILE = """\
version: 1
schedules:
  - name: days
    week: {daily: ["06:00-20:00"]}
access_levels:
  - name: Lab staff
    schedule: days
    doors: [LAB/Front]
    groups: [staff]
"""


def test_files_together_may_refer_to_each_other() -> None:
    policy = parse_all([("site.yaml", SITE_FILE), ("levels.yaml", LEVELS_FILE)])
    assert policy.findings == []
    assert policy.source == "site.yaml + levels.yaml"
    assert policy.document is not None
    assert [lvl.name for lvl in policy.document.access_levels] == ["Lab staff"]
    alone = parse_all([("levels.yaml", LEVELS_FILE)])
    assert [f.render(alone.source) for f in alone.errors] == [
        f"levels.yaml:{line_of(LEVELS_FILE, 'doors:')}: error: access level 'Lab staff': no "
        "facility 'LAB' in 'LAB/Front'",
        f"levels.yaml:{line_of(LEVELS_FILE, 'groups:')}: error: access level 'Lab staff': no "
        "group 'staff'",
    ]


def test_a_name_defined_in_two_files_is_an_error_at_the_second_naming_the_first() -> None:
    again = edit(LEVELS_FILE, "access_levels:", "groups:\n  - name: staff\naccess_levels:")
    again += SITE_FILE.split("\n", 1)[1].replace("groups:\n  - name: staff\n", "")
    policy = parse_all([("site.yaml", SITE_FILE), ("levels.yaml", again)])
    assert policy.document is not None
    assert [f.render(policy.source) for f in policy.errors] == [
        f"levels.yaml:{line_of(again, '- name: staff')}: error: group 'staff' is defined "
        f"twice (first at site.yaml:{line_of(SITE_FILE, '- name: staff')})",
        f"levels.yaml:{line_of(again, '- code: LAB')}: error: facility 'LAB' is defined "
        f"twice (first at site.yaml:{line_of(SITE_FILE, '- code: LAB')})",
    ]


def test_each_file_s_own_errors_name_that_file() -> None:
    bad = edit(LEVELS_FILE, "doors: [LAB/Front]", "doors: [LAB/Front]\n    colour: red")
    policy = parse_all([("site.yaml", SITE_FILE), ("levels.yaml", bad)])
    assert policy.document is None
    assert [f.render(policy.source) for f in policy.findings] == [
        f"levels.yaml:{line_of(bad, 'colour')}: error: unknown key 'colour'"
    ]
    twice = parse_all([("site.yaml", SITE_FILE), ("site.yaml", SITE_FILE)])
    assert [f.render(twice.source) for f in twice.errors] == [
        "site.yaml: error: the same file is given twice"
    ]


def test_one_file_reads_as_it_always_did() -> None:
    one = parse_all([("hq.yaml", HQ)])
    assert (one.source, one.text, one.parts, one.findings) == ("hq.yaml", HQ, (), [])


def test_the_two_example_files_form_one_deployment() -> None:
    policy = parse_all(
        [(str(EXAMPLES / n), (EXAMPLES / n).read_text()) for n in ("hq.yaml", "field-office.yaml")]
    )
    assert policy.findings == []


@pytest.mark.parametrize(
    "parts",
    [
        [("a.yaml", "version: 1\n"), ("b.yaml", "version: 1")],
        [("odd (7 characters).yaml", ""), ("c", "--- # file: x (3 characters)\nabc\n")],
        [("only.yaml", "# accessd policy: 1 files; starts like a pack\nversion: 1\n")],
        BOTH,
    ],
    ids=["no final newline", "names and texts that look like markers", "looks packed", "both"],
)
def test_packed_files_unpack_exactly(parts: list[tuple[str, str]]) -> None:
    assert unpack(pack(parts), "v") == parts


def test_one_file_is_kept_as_its_own_text_and_a_damaged_pack_is_refused() -> None:
    assert pack([("hq.yaml", HQ)]) == HQ and unpack(HQ, "v") is None
    damaged = pack(BOTH)[:-40]
    with pytest.raises(PolicyRejected, match="1 error"):
        unpack(damaged, "version 3")


async def test_two_files_apply_as_one_version_and_roll_back_exactly(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    await seed(sessions)
    first = await apply_parts(sessions, BOTH)
    assert first is not None and first.id == 1
    assert first.source == "hq.yaml + field-office.yaml"
    assert unpack(first.document, "v1") == BOTH
    async with sessions() as s:
        codes = (await s.scalars(select(Facility.code).order_by(Facility.code))).all()
    assert codes == ["DEN", "HQ"]
    assert await site_in(sessions) == site_of_parts(BOTH)

    second = await apply_parts(sessions, [("hq.yaml", HQ)])
    assert second is not None and second.document == HQ
    assert await site_in(sessions) == site_of_parts([("hq.yaml", HQ)])

    async with sessions() as s:
        back = await rollback(s, ACTOR, 1)
        await s.commit()
    assert back.version is not None and back.version.rollback_of == 1
    assert "+ facility DEN" in back.changes.lines()
    assert (back.version.document, back.version.sha256) == (first.document, first.sha256)
    assert back.version.source == "version 1 (hq.yaml + field-office.yaml)"
    assert await site_in(sessions) == site_of_parts(BOTH)
    assert len(events.of(PolicyChanged)) == 3


async def test_unknown_people_are_named_in_the_file_that_names_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(PolicyRejected) as info:
        await apply_parts(sessions, BOTH)
    rendered = [f.render("unused") for f in info.value.findings]
    assert rendered[0] == (
        f"hq.yaml:{line_of(HQ, 'members: [E1001')}: error: no person has external_id 'E1001'"
    )
    assert (
        f"field-office.yaml:{line_of(FIELD, 'members: [E5001')}: error: no person has "
        f"external_id 'E5001'"
    ) in rendered
    assert await count(sessions, Facility) == 0


# -- reach (pure) -----------------------------------------------------------------------------


def test_reach_needs_a_level_door_into_the_area_and_its_clearance_and_read_ins() -> None:
    snap = ps.site()
    scif_level = frozenset({ps.LVL_SCIF, ps.LVL_ALL})
    ps.add_person(
        snap, 1, levels=scif_level, eligibility=Eligibility.TS_SCI, programs=frozenset({"ALPHA"})
    )
    ps.add_person(snap, 2, levels=scif_level, eligibility=Eligibility.TS_SCI)
    ps.add_person(
        snap, 3, levels=scif_level, eligibility=Eligibility.SECRET, programs=frozenset({"ALPHA"})
    )
    ps.add_person(snap, 4, groups=frozenset({ps.STAFF_GROUP}))
    ps.add_person(snap, 5)
    everywhere = frozenset({"HQ/Lobby", "HQ/Offices"})
    assert reach(snap) == {
        1: everywhere | {"HQ/SCIF"},
        2: everywhere,
        3: everywhere,
        4: everywhere,
        5: frozenset(),
    }


def test_locked_doors_and_inactive_people_reach_nothing() -> None:
    snap = ps.site()
    ps.add_person(
        snap,
        1,
        levels=frozenset({ps.LVL_SCIF}),
        eligibility=Eligibility.TS_SCI,
        programs=frozenset({"ALPHA"}),
    )
    snap.people[2] = replace(snap.people[1], id=2, active=False)
    snap.people[3] = replace(snap.people[1], id=3, eligibility_suspended=True)
    assert reach(snap) == {1: frozenset({"HQ/SCIF"}), 2: frozenset(), 3: frozenset()}
    snap.doors[ps.VAULT] = replace(snap.doors[ps.VAULT], mode=DoorMode.LOCKED)
    assert reach(snap)[1] == frozenset()


def test_areas_compare_by_name_not_by_id() -> None:
    before, after = ps.site(), ps.site()
    # The same areas under new ids, as when a policy is applied afresh.
    after.areas = {
        a.id + 500: replace(
            a, id=a.id + 500, parent_id=None if a.parent_id is None else a.parent_id + 500
        )
        for a in after.areas.values()
    }
    after.doors = {d.id: replace(d, area_id=d.area_id + 500) for d in after.doors.values()}
    for snap in (before, after):
        ps.add_person(snap, 1, groups=frozenset({ps.STAFF_GROUP}))
    ps.add_person(before, 2, groups=frozenset({ps.STAFF_GROUP}))
    after.put_person(PersonPolicy(2, Affiliation.EMPLOYEE, levels=frozenset({ps.LVL_SCIF})))
    change = compare(before, after)
    assert change.gained == [] and change.lost == [(2, "HQ/Lobby"), (2, "HQ/Offices")]
    assert change.before[1] == change.after[1] == {"HQ/Lobby", "HQ/Offices"}
    assert change.after[2] == frozenset() and change.people == {2}


def reach_by_definition(snap: Snapshot) -> dict[int, frozenset[str]]:
    """Reach worked out door by door, the slow way the module docstring states it."""
    inside = {r.door_id for r in snap.readers.values() if r.direction is Direction.IN}
    out = {}
    for p in snap.people.values():
        got = set()
        for level in snap.levels_of(p) if p.active and not p.eligibility_suspended else ():
            for door_id in snap.levels[level].doors:
                door = snap.doors[door_id]
                area = snap.areas[door.area_id]
                if (
                    door_id in inside
                    and door.mode is not DoorMode.LOCKED
                    and p.eligibility.rank >= area.min_eligibility.rank
                    and area.programs <= p.programs
                ):
                    got.add(f"{snap.facilities[area.facility_id].code}/{area.name}")
        out[p.id] = frozenset(got)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_reach_and_its_change_match_the_definition_on_random_sites(seed: int) -> None:
    rnd = random.Random(seed)
    before, after = ps.site(), ps.site()
    programs = ["ALPHA", "BRAVO"]
    for pid in range(1, 301):
        person = PersonPolicy(
            pid,
            Affiliation.EMPLOYEE,
            rnd.choice(list(Eligibility)),
            eligibility_suspended=rnd.random() < 0.05,
            active=rnd.random() > 0.05,
            programs=frozenset(rnd.sample(programs, rnd.randint(0, 2))),
            groups=frozenset(rnd.sample([ps.SECURITY_GROUP, ps.STAFF_GROUP], rnd.randint(0, 2))),
            levels=frozenset(
                rnd.sample([ps.LVL_ALL, ps.LVL_BUSINESS, ps.LVL_SCIF], rnd.randint(0, 2))
            ),
        )
        before.put_person(person)
        after.put_person(replace(person, groups=person.groups ^ {ps.SECURITY_GROUP}))
    after.group_levels[ps.SECURITY_GROUP] = frozenset({ps.LVL_SCIF, ps.LVL_ALL})
    door = rnd.choice([ps.MAIN, ps.CORRIDOR, ps.VAULT])
    after.doors[door] = replace(after.doors[door], mode=DoorMode.LOCKED)
    after.areas[ps.OFFICES] = replace(
        after.areas[ps.OFFICES], min_eligibility=rnd.choice(list(Eligibility))
    )
    after.areas[ps.SCIF] = replace(after.areas[ps.SCIF], programs=frozenset(programs))
    was, now = reach_by_definition(before), reach_by_definition(after)
    assert reach(before) == was and reach(after) == now
    change = compare(before, after)
    assert change.gained == [(p, a) for p in sorted(now) for a in sorted(now[p] - was[p])]
    assert change.lost == [(p, a) for p in sorted(was) for a in sorted(was[p] - now[p])]
    assert change.lost or change.gained


# -- impact -----------------------------------------------------------------------------------

#: Four changes, each with a known effect on the people above:
#: Emery Shah joins hq-staff (gains the lobby and the offices); HQ security loses its SCIF
#: door (Gray Novak loses the SCIF; Finley Okafor keeps it through alpha-cleared); the
#: Denver work area needs secret (Indigo Reyes, uncleared, loses it); the evidence room
#: needs BRAVO (Jules Moreau loses it; Kai Tanaka is read in).
HQ_CHANGED = edit(
    edit(
        HQ, "members: [E1001, E1002, E1003, E1004]", "members: [E1001, E1002, E1003, E1004, E1005]"
    ),
    "areas: [HQ/Lobby, HQ/Offices, HQ/SCIF]",
    "areas: [HQ/Lobby, HQ/Offices]",
)
DEN_CHANGED = edit(
    edit(
        FIELD,
        "            class: limited\n",
        "            class: limited\n            clearance: secret\n",
    ),
    "                two_person: {window_seconds: 60}",
    "                programs: [BRAVO]\n                two_person: {window_seconds: 60}",
)
CHANGED = [("hq.yaml", HQ_CHANGED), ("field-office.yaml", DEN_CHANGED)]


def person(ids: dict[str, int], ext: str) -> PersonRef:
    given, family, _, _ = PEOPLE[ext]
    return PersonRef(ids[ext], ext, f"{given} {family}")


async def test_impact_names_exactly_who_gains_and_loses_which_area(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await seed(sessions)
    await apply_parts(sessions, BOTH)
    async with sessions() as s:
        seen = await preview(s, parse_all(CHANGED), actor=ACTOR)
    got = seen.impact
    assert got.gained == [
        AreaAccess(person(ids, "E1005"), "HQ/Lobby"),
        AreaAccess(person(ids, "E1005"), "HQ/Offices"),
    ]
    assert got.lost == [
        AreaAccess(person(ids, "E2002"), "HQ/SCIF"),
        AreaAccess(person(ids, "E5001"), "DEN/Work area"),
        AreaAccess(person(ids, "E5002"), "DEN/Evidence room"),
    ]
    assert got.people == 4
    assert got.lines() == [
        "+ E1005 Emery Shah: HQ/Lobby",
        "+ E1005 Emery Shah: HQ/Offices",
        "- E2002 Gray Novak: HQ/SCIF",
        "- E5001 Indigo Reyes: DEN/Work area",
        "- E5002 Jules Moreau: DEN/Evidence room",
    ]
    assert got.summary().startswith("access impact: 2 gained, 3 lost, 4 people; at any time")
    assert "group hq-staff: members +E1005" in "\n".join(seen.changes.lines())
    assert json.loads(json.dumps(got.as_dict()))["gained"][0] == {
        "person": {"id": ids["E1005"], "external_id": "E1005", "name": "Emery Shah"},
        "area": "HQ/Lobby",
    }


async def test_impact_from_nothing_is_everyone_s_reach_and_no_change_is_no_impact(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions() as s:
        first = await impact(s, parse_all(BOTH), actor=ACTOR)
    assert first.lost == []
    reached: dict[str, set[str]] = {}
    for a in first.gained:
        reached.setdefault(a.person.external_id or "", set()).add(a.area)
    assert reached == {
        "E1001": {"HQ/Lobby", "HQ/Offices"},
        "E1002": {"HQ/Lobby", "HQ/Offices"},
        "E1003": {"HQ/Lobby", "HQ/Offices", "HQ/SCIF"},
        "E1004": {"HQ/Lobby", "HQ/Offices"},
        "E2001": {"HQ/Lobby", "HQ/Offices", "HQ/SCIF"},
        "E2002": {"HQ/Lobby", "HQ/Offices", "HQ/SCIF"},
        "E3001": {"HQ/SCIF"},
        "E5001": {"DEN/Reception", "DEN/Work area"},
        "E5002": {"DEN/Reception", "DEN/Work area", "DEN/Evidence room"},
        "E5003": {"DEN/Reception", "DEN/Work area", "DEN/Evidence room"},
    }
    await apply_parts(sessions, BOTH)
    async with sessions() as s:
        same = await preview(s, parse_all(BOTH), actor=ACTOR)
    assert not same.changes and not same.impact


POLICY_TABLES = (
    Facility,
    Area,
    Door,
    Reader,
    Panel,
    Schedule,
    Holiday,
    PersonGroup,
    GroupMember,
    AccessLevel,
    AccessLevelDoor,
    AccessGrant,
    PolicyVersion,
    AuditEntry,
)


async def test_impact_leaves_the_database_untouched(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    await seed(sessions)
    await apply_parts(sessions, BOTH)
    site = await site_in(sessions)
    counts = {m.__name__: await count(sessions, m) for m in POLICY_TABLES}
    published = len(events.events)
    async with sessions() as s:
        seen = await preview(s, parse_all(CHANGED), actor=ACTOR)
        assert seen.impact
        # The session goes on working after the preview's rollback.
        assert await s.scalar(select(func.count()).select_from(Facility)) == 2
    assert await site_in(sessions) == site
    assert {m.__name__: await count(sessions, m) for m in POLICY_TABLES} == counts
    assert len(events.events) == published


async def test_impact_of_a_file_with_errors_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bad = [("hq.yaml", HQ), ("field-office.yaml", CLASHING)]
    async with sessions() as s:
        with pytest.raises(PolicyRejected) as info:
            await preview(s, parse_all(bad), actor=ACTOR)
    [finding] = info.value.findings
    assert finding.source == "field-office.yaml" and "us-federal" in finding.message
    assert await count(sessions, Facility) == 0


# -- compliance -------------------------------------------------------------------------------


def doors_of(facilities: list[FacilityReport], code: str) -> dict[str, Any]:
    [fac] = [f for f in facilities if f.code == code]
    return {d.door: d for d in fac.doors}


async def test_the_examples_are_compliant_and_the_report_says_why(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    await apply_parts(sessions, BOTH)
    async with sessions() as s:
        facilities = await report(s)
    assert [(f.code, f.threat_level, f.compliant) for f in facilities] == [
        ("DEN", "normal", True),
        ("HQ", "normal", True),
    ]
    hq = doors_of(facilities, "HQ")
    assert list(hq) == ["Main entrance", "North stair exit", "Office corridor", "SCIF vestibule"]
    vestibule = hq["SCIF vestibule"]
    assert (vestibule.area, vestibule.area_class, vestibule.scif, vestibule.mode) == (
        "SCIF",
        "exclusion",
        True,
        "card_and_pin",
    )
    assert vestibule.demanded == ["card_authentication", "pin", "biometric"]
    assert (vestibule.accepts, vestibule.proves) == (
        ["bio", "pki_auth"],
        ["card_authentication", "pin", "biometric"],
    )
    scif_in = vestibule.readers[0]
    assert (scif_in.name, scif_in.direction, scif_in.biometric) == ("SCIF in", "in", True)
    assert scif_in.performs == ["badge", "bio", "chuid", "pin", "pki_auth", "pki_cak", "sm_auth"]
    assert (hq["North stair exit"].mode, hq["North stair exit"].compliant) == ("locked", True)
    data = json.loads(json.dumps([f.as_dict() for f in facilities]))
    assert data[1]["doors"][3]["door"] == "SCIF vestibule" and data[1]["doors"][3]["compliant"]
    async with sessions() as s:
        [den] = await report(s, facility="DEN")
        assert den.code == "DEN"
        with pytest.raises(NotFound, match="no facility has code 'XX'"):
            await report(s, facility="XX")


#: (table, row name, values) -> the doors it makes non-compliant, with their reasons.
NONCOMPLIANT = [
    pytest.param(
        Door,
        "Main entrance",
        {"accepts": ["chuid"]},
        {
            "Main entrance": [
                "accepts chuid only: proves no factor; controlled area Lobby needs "
                "card_authentication"
            ]
        },
        id="accepts chuid only",
    ),
    pytest.param(
        Door,
        "SCIF vestibule",
        {"accepts": ["pki_auth"]},
        {
            "SCIF vestibule": [
                "exclusion area SCIF needs biometric; the door accepts pki_auth, proving "
                "card_authentication, pin"
            ]
        },
        id="exclusion door without biometric",
    ),
    pytest.param(
        Reader,
        "SCIF in",
        {"biometric": False},
        {
            "SCIF vestibule": [
                "exclusion area SCIF needs biometric; reader 'SCIF in' has no biometric sensor"
            ]
        },
        id="exclusion reader without a biometric sensor",
    ),
    pytest.param(
        Reader,
        "Corridor in",
        {"pin_pad": False},
        {
            "Office corridor": [
                "limited area Offices needs pin; reader 'Corridor in' has no PIN pad"
            ]
        },
        id="limited reader without a PIN pad",
    ),
    pytest.param(
        Door,
        "Office corridor",
        {"mode": "unlocked_by_schedule"},
        {
            "Office corridor": [
                "mode unlocked_by_schedule leaves limited area Offices open on its unlock schedule"
            ]
        },
        id="limited area unlocked by schedule",
    ),
    pytest.param(
        Door,
        "Main entrance",
        {"mode": "card_and_pin"},
        {
            # The mode asks for the PIN both ways, as the engine does.
            "Main entrance": [
                "controlled area Lobby (mode card_and_pin) needs pin; the door accepts pki_cak, "
                "proving card_authentication",
                "the outside (mode card_and_pin) needs pin; the door accepts pki_cak, proving "
                "card_authentication",
            ]
        },
        id="card and PIN without a PIN mechanism",
    ),
    pytest.param(
        Area,
        "SCIF",
        {"min_eligibility": "secret"},
        {
            "SCIF vestibule": [
                "SCIF SCIF admits secret clearance: a SCIF needs top_secret or ts_sci"
            ]
        },
        id="SCIF below top secret",
    ),
    pytest.param(
        Area,
        "SCIF",
        {"area_class": "controlled"},
        {"SCIF vestibule": ["SCIF SCIF is a controlled area: a SCIF must be limited or exclusion"]},
        id="SCIF in a controlled area",
    ),
    pytest.param(
        Facility,
        "HQ",
        {"threat_level": "elevated"},
        {
            "Main entrance": [
                "controlled area Lobby (threat level elevated: 2 factors) needs pin; the door "
                "accepts pki_cak, proving card_authentication"
            ],
            # Its exit reader enters the lobby, which now demands two factors too.
            "Office corridor": [
                "controlled area Lobby (threat level elevated: 2 factors) needs pin; reader "
                "'Corridor out' has no PIN pad"
            ],
        },
        id="threat level raised above what the doors prove",
    ),
]


@pytest.mark.parametrize(("model", "name", "values", "flagged"), NONCOMPLIANT)
async def test_compliance_flags_each_kind_of_non_compliance(
    sessions: async_sessionmaker[AsyncSession],
    model: Any,
    name: str,
    values: dict[str, Any],
    flagged: dict[str, list[str]],
) -> None:
    await seed(sessions)
    await apply_parts(sessions, BOTH)
    key = model.code if model is Facility else model.name
    async with sessions() as s:
        # Drift the way the API can: a row edited after the files were applied.
        await s.execute(update(model).where(key == name).values(**values))
        await s.commit()
        facilities = await report(s)
    hq = doors_of(facilities, "HQ")
    assert {door: row.reasons for door, row in hq.items() if not row.compliant} == flagged
    assert all(row.reasons == [] for row in hq.values() if row.compliant)
    assert [f.compliant for f in facilities] == [True, False]


# -- the command line -------------------------------------------------------------------------


def test_cli_check_takes_several_files(tmp_path: Path) -> None:
    hq, den = EXAMPLES / "hq.yaml", EXAMPLES / "field-office.yaml"
    good = cli("check", str(hq), str(den))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.strip() == f"{hq} + {den}: 0 errors, 0 warnings"
    clash = tmp_path / "field-office.yaml"
    clash.write_text(CLASHING)
    bad = cli("check", str(hq), str(clash))
    assert bad.returncode == 1
    assert (
        f"{clash}:{line_of(CLASHING, '- name: us-federal')}: error: holiday calendar "
        f"'us-federal' is defined twice (first at {hq}:{line_of(HQ, '- name: us-federal')})"
    ) in bad.stdout
    assert cli("check", str(hq), str(tmp_path / "missing.yaml")).returncode == 2


async def test_cli_apply_impact_and_compliance(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await seed(sessions)
    examples = [str(EXAMPLES / "hq.yaml"), str(EXAMPLES / "field-office.yaml")]
    dry = cli("apply", "--dry-run", *examples, db=db_url)
    assert dry.returncode == 0, dry.stderr
    assert "+ facility DEN" in dry.stdout and "+ E1003 Casey Lindqvist: HQ/SCIF" in dry.stdout
    assert "access impact: 24 gained, 0 lost, 10 people" in dry.stdout
    assert await count(sessions, Facility) == 0

    applied = cli("apply", *examples, db=db_url)
    assert applied.returncode == 0, applied.stderr
    assert "applied as version 1" in applied.stdout
    assert await count(sessions, Facility) == 2

    hq, den = tmp_path / "hq.yaml", tmp_path / "field-office.yaml"
    hq.write_text(HQ_CHANGED)
    den.write_text(DEN_CHANGED)
    seen = cli("impact", str(hq), str(den), db=db_url)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.splitlines()[:5] == [
        "+ E1005 Emery Shah: HQ/Lobby",
        "+ E1005 Emery Shah: HQ/Offices",
        "- E2002 Gray Novak: HQ/SCIF",
        "- E5001 Indigo Reyes: DEN/Work area",
        "- E5002 Jules Moreau: DEN/Evidence room",
    ]
    assert "access impact: 2 gained, 3 lost, 4 people" in seen.stdout
    clash = tmp_path / "clash.yaml"
    clash.write_text(CLASHING)
    refused = cli("impact", str(hq), str(clash), db=db_url)
    assert refused.returncode == 1 and f"{clash}:" in refused.stderr

    table = cli("compliance", db=db_url)
    assert table.returncode == 0, table.stderr
    summaries = [line.strip() for line in table.stdout.splitlines() if line.endswith("compliant")]
    assert "3 doors, 0 non-compliant" in summaries and "4 doors, 0 non-compliant" in summaries
    assert not any("! " in line for line in table.stdout.splitlines())
    async with sessions() as s:
        await s.execute(
            update(Facility).where(Facility.code == "HQ").values(threat_level="elevated")
        )
        await s.commit()
    flagged = cli("compliance", "--facility", "HQ", db=db_url)
    assert flagged.returncode == 1
    assert "! controlled area Lobby (threat level elevated: 2 factors) needs pin" in flagged.stdout
    as_json = cli("compliance", "--json", db=db_url)
    assert as_json.returncode == 1
    assert [f["code"] for f in json.loads(as_json.stdout)] == ["DEN", "HQ"]
    assert cli("compliance", "--facility", "XX", db=db_url).returncode == 1


async def test_an_apply_that_takes_access_away_needs_it_accepted(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await seed(sessions)
    examples = [str(EXAMPLES / "hq.yaml"), str(EXAMPLES / "field-office.yaml")]
    assert cli("apply", *examples, db=db_url).returncode == 0
    hq, den = tmp_path / "hq.yaml", tmp_path / "field-office.yaml"
    hq.write_text(HQ_CHANGED)
    den.write_text(DEN_CHANGED)
    # Not at a terminal (a script): no question is asked, the apply is refused.
    refused = cli("apply", str(hq), str(den), db=db_url)
    assert refused.returncode == 1, refused.stdout
    assert "- E2002 Gray Novak: HQ/SCIF" in refused.stdout
    assert "3 area accesses would be lost (listed above with -)" in refused.stderr
    assert "nothing was applied" in refused.stderr
    dry = cli("apply", "--dry-run", str(hq), str(den), db=db_url)
    assert dry.returncode == 0 and "would be refused: 3 area accesses" in dry.stdout
    accepted = cli("apply", "--accept-losses", str(hq), str(den), db=db_url)
    assert accepted.returncode == 0, accepted.stderr
    assert "applied as version 2" in accepted.stdout
