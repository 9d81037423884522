"""Site policy files: errors by line, the SP 800-116 checks, apply/diff/rollback/export on
both databases, all-or-nothing, and the `accessd policy` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.decisions.loader import load_policy
from accessd.errors import NotFound
from accessd.events import PolicyChanged
from accessd.models import (
    AccessGrant,
    AccessLevelDoor,
    Area,
    AuditEntry,
    Door,
    Facility,
    GroupMember,
    Holiday,
    Panel,
    Person,
    PolicyVersion,
    Reader,
    Schedule,
)
from accessd.policyfile import (
    Applied,
    PolicyConflict,
    PolicyFile,
    PolicyRejected,
    apply,
    dump,
    export,
    parse,
    rollback,
)
from accessd.policyfile.site import Site, from_document
from accessd.policyfile.stored import load
from accessd.services import audit
from policies.vocabulary import DoorMode, Eligibility, ThreatLevel
from tests.conftest import Recorder
from tests.paths import ROOT

EXAMPLES = ROOT / "policies" / "examples"
HQ = (EXAMPLES / "hq.yaml").read_text()
FIELD = (EXAMPLES / "field-office.yaml").read_text()
ACTOR = "cli:test"
#: Everyone the examples and the edits below name.
PEOPLE = [f"E100{i}" for i in range(1, 6)] + ["E2001", "E2002", "E3001", "E5001", "E5002", "E5003"]


def line_of(doc: str, needle: str) -> int:
    """1-based line where `needle` first starts."""
    return doc[: doc.index(needle)].count("\n") + 1


def edit(doc: str, old: str, new: str) -> str:
    assert old in doc, old
    return doc.replace(old, new, 1)


def found(policy: PolicyFile, severity: str = "error") -> list[tuple[int | None, str]]:
    return [(f.line, f.message) for f in policy.findings if f.severity == severity]


def has(policy: PolicyFile, line: int, fragment: str, severity: str = "error") -> bool:
    return any(n == line and fragment in m for n, m in found(policy, severity))


# -- reading and checking -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hq.yaml", "field-office.yaml"])
def test_the_examples_pass_the_check_without_a_warning(name: str) -> None:
    policy = parse((EXAMPLES / name).read_text(), name)
    assert policy.findings == []
    assert policy.document is not None


SCHEMA_ERRORS = """\
version: 1
schedules:
  - name: business-hours
    week:
      mon-fry: ["07:00-19:00"]
      sat: ["19:00-07:00"]
groups:
  - name: staff
    colour: blue
facilities:
  - code: HQ
    name: Headquarters
    timezone: America/Gotham
    security_level: six
    areas:
      - name: Lobby
        class: controled
    doors:
      - name: Main
        mode: card_only
        accepts: [pki_cak, smoke_signal]
access_levels:
  - name: All
    doors: [Main]
"""


def test_schema_errors_are_all_reported_with_their_lines() -> None:
    policy = parse(SCHEMA_ERRORS, "bad.yaml")
    assert policy.document is None
    got = found(policy)
    expected = [
        (5, "unknown day 'mon-fry'"),
        (6, "ends before it starts"),
        (9, "unknown key 'colour'"),
        (13, "unknown timezone 'America/Gotham'"),
        (14, "security_level: Input should be a valid integer"),
        (17, "class: Input should be"),
        (19, "'into' is required"),
        (21, "accepts: Input should be"),
        (24, "'Main' is not FACILITY/name"),
    ]
    assert [line for line, _ in got] == [line for line, _ in expected], got
    for (_, message), (_, fragment) in zip(got, expected, strict=True):
        assert fragment in message
    assert policy.findings[0].render("bad.yaml").startswith("bad.yaml:5: error: ")


SEMANTIC_ERRORS = """\
version: 1
schedules:
  - name: day
    week: {daily: ["06:00-22:00"]}
    holiday_calendars: [nowhere]
  - name: day
groups:
  - name: staff
facilities:
  - code: HQ
    name: HQ
    timezone: America/New_York
    security_level: 3
    threat_levels:
      lockdown: {only_groups: [guards]}
    panels: [{name: p1, transport: mqtt}]
    areas:
      - name: Lobby
        class: controlled
      - name: Lobby
        class: controlled
    doors:
      - name: Main
        into: Lobbby
        panel: p2
        accepts: [pki_cak]
      - name: Side
        into: Lobby
        from: Lobby
        mode: unlocked_by_schedule
        accepts: [pki_cak]
      - name: Main
        into: Lobby
        accepts: [pki_cak]
        accepts: [pki_auth]
access_levels:
  - name: All
    schedule: night
    doors: [HQ/Back]
    areas: [XX/Lobby]
    groups: [staf]
"""


def test_references_and_duplicates_are_reported_with_their_lines() -> None:
    policy = parse(SEMANTIC_ERRORS, "refs.yaml")
    expected = [
        (5, "schedule 'day': no holiday calendar 'nowhere'"),
        (6, "schedule 'day' is defined twice (first on line 3)"),
        (15, "facility HQ: threat level lockdown: no group 'guards'"),
        (20, "HQ: area 'Lobby' is defined twice (first on line 18)"),
        (24, "door HQ/Main: no area 'Lobbby' in HQ"),
        (25, "door HQ/Main: no panel 'p2' in HQ"),
        (29, "door HQ/Side leads from Lobby into itself"),
        (30, "door HQ/Side: mode unlocked_by_schedule needs an unlock_schedule"),
        (32, "HQ: door 'Main' is defined twice (first on line 23)"),
        (35, "key 'accepts' is given twice (first on line 34)"),
        (38, "access level 'All': no schedule 'night'"),
        (39, "access level 'All': no door 'Back' in 'HQ/Back'"),
        (40, "access level 'All': no facility 'XX' in 'XX/Lobby'"),
        (41, "access level 'All': no group 'staf'"),
    ]
    assert found(policy) == expected


def test_a_yaml_syntax_error_names_its_line() -> None:
    policy = parse("version: 1\ngroups:\n  - name: [unclosed\n  - name: b\n", "broken.yaml")
    assert policy.document is None
    [finding] = policy.findings
    assert finding.line == 4 and finding.message.startswith("YAML: ")


def test_yaml_1_1_surprises_stay_text() -> None:
    # YAML 1.1 reads `no` as false and 07:30 as 450; a policy file means the words.
    policy = parse(
        "version: 1\ngroups:\n  - {name: no, members: [on, 0815]}\nschedules:\n"
        "  - {name: s, week: {mon: [07:30-12:00]}}\n",
        "t.yaml",
    )
    assert policy.findings == []
    assert policy.document is not None
    assert policy.document.groups[0].name == "no"
    assert policy.document.groups[0].members == ["on", "0815"]


def test_aliases_cannot_blow_a_small_file_up() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    policy = parse("\n".join(lines) + "\n", "laughs.yaml")
    assert [f.message for f in policy.findings] == ["YAML: the document expands to too many values"]


def test_an_alias_used_as_a_key_cannot_blow_a_small_file_up() -> None:
    # As in the 505-byte file found by probing: a nest of aliases named as a mapping key,
    # which PyYAML built whole, unbounded (42 s and 3 GiB); refused as a key now.
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 5)]
    lines += ["groups:", "  ? *a4", "  : member"]
    text = "\n".join(lines) + "\n"
    assert len(text) < 600
    policy = parse(text, "key.yaml")
    assert [f.message for f in policy.findings] == ["YAML: a mapping key must be a plain value"]
    assert policy.findings[0].line == len(lines) - 1


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert found(parse("- just\n- a list\n", "l.yaml")) == [
        (1, "the document must be a mapping with `version: 1` first")
    ]
    assert found(parse("", "empty.yaml"))[0][0] == 1


SP800_116 = [
    pytest.param(
        "accepts: [pki_auth, bio]",
        "accepts: [pki_cak]",
        "accepts: [pki_cak]\n        readers:\n          - name: SCIF in",
        "door HQ/SCIF vestibule: exclusion area SCIF in mode card_and_pin demands "
        "card_authentication, pin, biometric; the door accepts pki_cak, proving "
        "card_authentication: missing pin, biometric (SP 800-116: accept pki_auth with bio)",
        id="exclusion door accepting only pki_cak",
    ),
    pytest.param(
        "accepts: [pki_auth, pki_cak, pin]",
        "accepts: [chuid]",
        "accepts: [chuid]",
        "missing card_authentication, pin",
        id="limited door accepting chuid",
    ),
    pytest.param(
        "accepts: [pki_cak]",
        "accepts: [badge]",
        "accepts: [badge]",
        "controlled area Lobby demands card_authentication; the door accepts badge, proving "
        "nothing: missing card_authentication",
        id="controlled door accepting a badge number",
    ),
    pytest.param(
        "mode: first_person_in",
        "mode: card_and_pin",
        "accepts: [pki_cak]",
        "controlled area Lobby in mode card_and_pin demands card_authentication, pin",
        id="card-and-pin door without a PIN mechanism",
    ),
    pytest.param(
        "            biometric: true\n            osdp_address: 1",
        "            biometric: false\n            osdp_address: 1",
        "- name: SCIF in",
        "reader 'SCIF in' of door HQ/SCIF vestibule cannot prove biometric for exclusion "
        "area SCIF: it needs a biometric sensor",
        id="exclusion reader without a biometric sensor",
    ),
    pytest.param(
        "contact: true, contactless: true, pin_pad: true}",
        "contact: true, contactless: true}",
        "{name: Corridor in",
        "reader 'Corridor in' of door HQ/Office corridor cannot prove pin for limited area "
        "Offices: it needs a PIN pad",
        id="limited reader without a PIN pad",
    ),
    pytest.param(
        "{name: SCIF out, direction: out, contact: true, pin_pad: true",
        "{name: SCIF out, direction: out, pin_pad: true",
        "{name: SCIF out",
        "reader 'SCIF out' of door HQ/SCIF vestibule cannot prove card_authentication, pin for "
        "limited area Offices: it needs the contact interface (for pki_auth)",
        id="exit reader into a limited area without the contact interface",
    ),
    pytest.param(
        "class: exclusion\n                scif: true",
        "class: controlled\n                scif: true",
        "class: controlled\n                scif",
        "area HQ/SCIF is a SCIF but a controlled area: a SCIF must be a limited or exclusion area",
        id="SCIF in a controlled area",
    ),
    pytest.param(
        "clearance: ts_sci",
        "clearance: secret",
        "clearance: secret",
        "area HQ/SCIF is a SCIF with clearance secret: a SCIF needs top_secret or ts_sci",
        id="SCIF without top secret clearance",
    ),
    pytest.param(
        "        panel: hq-panel-1\n        accepts: [pki_auth",
        "        panel: hq-panel-1\n        mode: unlocked_by_schedule\n"
        "        unlock_schedule: business-hours\n        accepts: [pki_auth",
        "mode: unlocked_by_schedule",
        "door HQ/Office corridor: mode unlocked_by_schedule would leave limited area Offices "
        "open; SP 800-116 limited areas demand 2 factors at every entry",
        id="door into a limited area unlocked by schedule",
    ),
    pytest.param(
        "        mode: card_and_pin\n        unlock_seconds: 4",
        "        mode: first_person_in\n        unlock_schedule: scif-hours",
        "mode: first_person_in\n        unlock_schedule: scif",
        "door HQ/SCIF vestibule: mode first_person_in would leave exclusion area SCIF open",
        id="first-person-in door into an exclusion area",
    ),
    pytest.param(
        "            class: limited",
        "            class: unrestricted",
        "class: unrestricted",
        "area HQ/Offices (unrestricted) is nested in controlled area Lobby: an inner area must "
        "be at least as restricted as the one around it",
        id="an inner area less restricted than its parent",
    ),
    pytest.param(
        "occupancy_limit: 12",
        "occupancy_limit: 1",
        "occupancy_limit: 1",
        "area HQ/SCIF: the two-person rule cannot be kept with an occupancy limit of 1",
        id="two-person rule with room for one",
    ),
]


@pytest.mark.parametrize(("old", "new", "at", "message"), SP800_116)
def test_sp_800_116_violations_fail_the_check(old: str, new: str, at: str, message: str) -> None:
    doc = edit(HQ, old, new)
    policy = parse(doc, "hq.yaml")
    assert policy.document is not None
    line = line_of(doc, at)
    assert has(policy, line, message), (line, found(policy))


def test_warnings_point_at_odd_things_without_failing() -> None:
    doc = edit(HQ, "                occupancy_limit: 12\n", "")
    doc = edit(doc, "accepts: [pki_cak]", "accepts: [pki_cak, bio]")
    doc = edit(
        doc,
        "        into: Lobby\n        mode: locked",
        "        into: Lobby\n        mode: locked\n        unlock_schedule: lobby-open",
    )
    policy = parse(doc, "hq.yaml")
    assert policy.errors == []
    assert found(policy, "warning") == [
        (
            line_of(doc, "two_person:"),
            "area HQ/SCIF has the two-person rule but no occupancy_limit",
        ),
        (
            line_of(doc, "accepts: [pki_cak, bio]"),
            "door HQ/Main entrance accepts bio but none of its readers can carry it out",
        ),
        (
            line_of(doc, "unlock_schedule: lobby-open\n\naccess"),
            "door HQ/North stair exit: unlock_schedule has no effect in mode locked",
        ),
    ]


# -- the database ---------------------------------------------------------------------------


async def seed_people(sessions: async_sessionmaker[AsyncSession], *ids: str) -> None:
    async with sessions() as s:
        s.add_all(
            Person(external_id=e, given_name="Pat", family_name=e, affiliation="employee")
            for e in ids or PEOPLE
        )
        await s.commit()


async def apply_text(
    sessions: async_sessionmaker[AsyncSession], doc: str, source: str = "hq.yaml", **kw: Any
) -> Applied:
    async with sessions() as s:
        done = await apply(s, ACTOR, parse(doc, source), **kw)
        await s.commit()
        return done


async def site_in(sessions: async_sessionmaker[AsyncSession]) -> Site:
    async with sessions() as s:
        return (await load(s))[0]


def site_of(doc: str) -> Site:
    document = parse(doc, "x").document
    assert document is not None
    return from_document(document)


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_apply_creates_the_whole_site(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    await seed_people(sessions)
    done = await apply_text(sessions, HQ, comment="first")
    assert done.version is not None and done.version.id == 1
    summary = done.changes.summary()
    assert (len(summary["added"]), summary["changed"], summary["removed"]) == (26, [], [])
    assert "door HQ/SCIF vestibule" in summary["added"]
    counts = {
        m.__name__: await count(sessions, m)
        for m in (Facility, Panel, Area, Door, Reader, Schedule, Holiday, GroupMember)
    }
    assert counts == {
        "Facility": 1,
        "Panel": 2,
        "Area": 3,
        "Door": 4,
        "Reader": 6,
        "Schedule": 3,
        "Holiday": 12,
        "GroupMember": 8,
    }
    # HQ general: the doors into the lobby and the offices; security adds the SCIF's.
    assert await count(sessions, AccessLevelDoor) == 3 + 4 + 1
    assert await count(sessions, AccessGrant) == 4
    assert await site_in(sessions) == site_of(HQ)
    async with sessions() as s:
        scif = await s.scalar(select(Area).where(Area.name == "SCIF"))
        assert scif is not None
        assert (scif.area_class, scif.is_scif, scif.min_eligibility) == (
            "exclusion",
            True,
            "ts_sci",
        )
        assert (scif.programs, scif.two_person_window_s, scif.occupancy_limit) == (
            ["ALPHA"],
            30,
            12,
        )
        offices = await s.scalar(select(Area).where(Area.name == "Offices"))
        assert offices is not None and scif.parent_id == offices.id
        assert (offices.anti_passback, offices.apb_reset_s) == ("soft", 720 * 60)
        vestibule = await s.scalar(select(Door).where(Door.name == "SCIF vestibule"))
        assert vestibule is not None
        assert (vestibule.mode, vestibule.unlock_seconds, vestibule.area_id) == (
            "card_and_pin",
            4,
            scif.id,
        )
        assert vestibule.from_area_id == offices.id and vestibule.accepts == ["bio", "pki_auth"]
        main = await s.scalar(select(Door).where(Door.name == "Main entrance"))
        lobby_open = await s.scalar(select(Schedule).where(Schedule.name == "lobby-open"))
        assert main is not None and lobby_open is not None
        assert main.unlock_schedule_id == lobby_open.id
        assert lobby_open.week == [[[450, 1080]]] * 5 + [[], []]
        hq = await s.scalar(select(Facility))
        assert hq is not None and hq.threat_rules == {
            "elevated": {"min_factors": 2, "only_groups": None},
            "high": {"min_factors": 3, "only_groups": ["alpha-cleared", "security"]},
            "lockdown": {"min_factors": 3, "only_groups": ["security"]},
        }
        version = await s.get(PolicyVersion, 1)
        assert version is not None
        assert (version.actor, version.source, version.comment) == (ACTOR, "hq.yaml", "first")
        assert version.document == HQ and version.changes == summary
        entries = (await s.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
        assert len(entries) == 26 + 1
        assert entries[-1].action == "policy.apply" and entries[-1].entity_id == "1"
        assert {"door.create", "area.create", "access_level.create"} <= {e.action for e in entries}
        assert (await audit.verify(s)).ok
    assert [e.scope for e in events.of(PolicyChanged)] == ["all"]


async def test_the_decision_snapshot_reads_what_a_file_applied(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    async with sessions() as s:
        snap = await load_policy(s)
    groups = {name: gid for gid, name in snap.group_names.items()}
    [hq] = snap.facilities.values()
    assert hq.threat_rules[ThreatLevel.HIGH].only_groups == frozenset(
        {groups["security"], groups["alpha-cleared"]}
    )
    assert hq.threat_rules[ThreatLevel.LOCKDOWN].min_factors == 3
    [scif] = [a for a in snap.areas.values() if a.name == "SCIF"]
    assert (scif.min_eligibility, scif.programs, scif.occupancy_limit) == (
        Eligibility.TS_SCI,
        frozenset({"ALPHA"}),
        12,
    )
    [vestibule] = [d for d in snap.doors.values() if d.name == "SCIF vestibule"]
    assert vestibule.area_id == scif.id and vestibule.mode is DoorMode.CARD_AND_PIN
    levels = {lvl.name: lvl for lvl in snap.levels.values()}
    assert vestibule.id in levels["HQ SCIF"].doors
    assert levels["HQ SCIF"].id in snap.group_levels[groups["alpha-cleared"]]


async def test_applying_the_same_file_again_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    audit_before = await count(sessions, AuditEntry)
    again = await apply_text(sessions, HQ)
    assert not again.changes and again.version is None
    assert await count(sessions, PolicyVersion) == 1
    assert await count(sessions, AuditEntry) == audit_before
    async with sessions() as s:
        assert set((await s.scalars(select(Door.version))).all()) == {1}
    assert len(events.of(PolicyChanged)) == 1


CHANGED = edit(
    edit(
        edit(
            edit(HQ, 'mon-fri: ["07:00-19:00"]', 'mon-fri: ["07:00-18:00"]'),
            "members: [E1001, E1002, E1003, E1004]",
            "members: [E1001, E1002, E1003, E1004, E1005]",
        ),
        "        mode: card_and_pin\n",
        "",
    ),
    HQ[HQ.index("      - name: North stair exit") : HQ.index("\naccess_levels:")],
    "",
)


async def test_a_changed_file_applies_exactly_its_differences(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    done = await apply_text(sessions, CHANGED, comment="tighter hours")
    assert done.changes.lines() == [
        "~ schedule business-hours: week mon-fri 07:00-19:00 -> mon-fri 07:00-18:00",
        "~ group hq-staff: members +E1005",
        "~ door HQ/SCIF vestibule: mode card_and_pin -> card_only",
        "- door HQ/North stair exit",
        "~ access level HQ general: doors -HQ/North stair exit",
        "~ access level HQ security: doors -HQ/North stair exit",
    ]
    assert done.version is not None and done.version.changes == done.changes.summary()
    assert await site_in(sessions) == site_of(CHANGED)
    async with sessions() as s:
        assert await s.scalar(select(Door).where(Door.name == "North stair exit")) is None
        vestibule = await s.scalar(select(Door).where(Door.name == "SCIF vestibule"))
        assert vestibule is not None and vestibule.version == 2
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.seq > 27))).all()
        assert sorted(actions) == sorted(
            ["schedule.update", "group.update", "door.update", "door.delete"]
            + ["access_level.update"] * 2
            + ["policy.apply"]
        )


async def test_rollback_restores_the_earlier_version_as_a_new_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    await apply_text(sessions, CHANGED)
    async with sessions() as s:
        done = await rollback(s, ACTOR, 1)
        await s.commit()
    assert "+ door HQ/North stair exit" in done.changes.lines()
    assert "~ group hq-staff: members -E1005" in done.changes.lines()
    assert done.version is not None
    assert (done.version.id, done.version.rollback_of) == (3, 1)
    assert await site_in(sessions) == site_of(HQ)
    async with sessions() as s:
        with pytest.raises(NotFound, match="policy version 99 does not exist"):
            await rollback(s, ACTOR, 99)


@pytest.mark.parametrize("doc", [HQ, FIELD], ids=["hq", "field-office"])
async def test_an_export_applies_as_no_change(
    sessions: async_sessionmaker[AsyncSession], doc: str
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, doc)
    async with sessions() as s:
        exported = dump(await export(s))
    again = parse(exported, "export.yaml")
    assert again.findings == []
    assert site_of(exported) == site_of(doc)
    done = await apply_text(sessions, exported, "export.yaml")
    assert not done.changes and done.version is None


async def test_a_file_naming_an_unknown_person_applies_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    audit_before = await count(sessions, AuditEntry)
    bad = edit(CHANGED, "members: [E2001, E2002]", "members: [E2001, E2002, E9999]")
    with pytest.raises(PolicyRejected) as info:
        await apply_text(sessions, bad)
    assert [(f.line, f.message) for f in info.value.findings] == [
        (line_of(bad, "members: [E2001, E2002, E9999]"), "no person has external_id 'E9999'")
    ]
    assert await site_in(sessions) == site_of(HQ)
    assert await count(sessions, PolicyVersion) == 1
    assert await count(sessions, AuditEntry) == audit_before


async def test_a_file_with_errors_is_refused_before_anything_is_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(PolicyRejected) as info:
        await apply_text(sessions, edit(HQ, "clearance: ts_sci", "clearance: secret"))
    assert "1 error" in info.value.detail
    assert await count(sessions, Facility) == 0


async def test_a_record_other_rows_still_need_is_not_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    async with sessions() as s:
        # A table from another feature that refers to doors and forbids deleting them.
        await s.execute(
            text(
                "CREATE TABLE door_notes (id INTEGER PRIMARY KEY, door_id INTEGER NOT NULL "
                "REFERENCES doors(id) ON DELETE RESTRICT)"
            )
        )
        door = await s.scalar(select(Door.id).where(Door.name == "North stair exit"))
        await s.execute(text("INSERT INTO door_notes (id, door_id) VALUES (1, :d)"), {"d": door})
        await s.commit()
    with pytest.raises(PolicyConflict, match="cannot remove door HQ/North stair exit"):
        await apply_text(sessions, CHANGED)
    assert await site_in(sessions) == site_of(HQ)
    assert await count(sessions, PolicyVersion) == 1


async def test_a_file_for_another_site_replaces_the_whole_policy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_people(sessions)
    await apply_text(sessions, HQ)
    done = await apply_text(sessions, FIELD, "field-office.yaml")
    removed = done.changes.summary()["removed"]
    assert {"facility HQ", "area HQ/SCIF", "reader HQ/SCIF vestibule/SCIF in"} <= set(removed)
    assert await site_in(sessions) == site_of(FIELD)
    async with sessions() as s:
        den = await s.scalar(select(Facility))
        assert den is not None and (den.code, den.timezone) == ("DEN", "America/Denver")
        assert (await audit.verify(s)).ok


async def test_a_dry_run_rolled_back_publishes_nothing(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    await seed_people(sessions)
    async with sessions() as s:
        done = await apply(s, ACTOR, parse(HQ, "hq.yaml"))
        assert done.changes
        await s.rollback()
    assert await count(sessions, Facility) == 0
    assert events.of(PolicyChanged) == []


# -- the command line -----------------------------------------------------------------------


def cli(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ACCESSD_LOG_LEVEL="WARNING")
    if db is not None:
        env["ACCESSD_DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, "-m", "accessd", "policy", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_check_prints_file_and_line_and_fails_on_errors(tmp_path: Path) -> None:
    good = cli("check", str(EXAMPLES / "hq.yaml"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.strip().endswith("0 errors, 0 warnings")
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(HQ, "accepts: [pki_auth, bio]", "accepts: [pki_cak]"))
    proc = cli("check", str(bad))
    assert proc.returncode == 1
    line = line_of(bad.read_text(), "accepts: [pki_cak]\n        readers:\n          - name: SCIF")
    assert f"{bad}:{line}: error: door HQ/SCIF vestibule: exclusion area SCIF" in proc.stdout
    assert cli("check", str(tmp_path / "missing.yaml")).returncode == 2


async def test_cli_apply_versions_rollback_and_export(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    hq, changed = tmp_path / "hq.yaml", tmp_path / "hq-v2.yaml"
    hq.write_text(HQ)
    changed.write_text(CHANGED)

    unknown = cli("check", "--against-db", str(hq), db=db_url)
    assert unknown.returncode == 1
    assert f"{hq}:{line_of(HQ, 'members: [E1001')}: error: no person has external_id 'E1001'" in (
        unknown.stdout
    )
    failed = cli("apply", str(hq), db=db_url)
    assert failed.returncode == 1 and "nothing was applied" in failed.stderr

    await seed_people(sessions)
    dry = cli("apply", "--dry-run", str(hq), db=db_url)
    assert dry.returncode == 0, dry.stderr
    assert "+ door HQ/SCIF vestibule" in dry.stdout
    assert "dry run: 26 added, 0 changed, 0 removed; nothing was applied" in dry.stdout
    assert await count(sessions, Facility) == 0

    first = cli("apply", str(hq), "--comment", "initial", db=db_url)
    assert first.returncode == 0, first.stderr
    assert "applied as version 1: 26 added, 0 changed, 0 removed" in first.stdout
    second = cli("apply", str(changed), db=db_url)
    assert "~ door HQ/SCIF vestibule: mode card_and_pin -> card_only" in second.stdout
    assert "applied as version 2: 0 added, 5 changed, 1 removed" in second.stdout

    back = cli("rollback", "1", db=db_url)
    assert back.returncode == 0, back.stderr
    assert "applied as version 3" in back.stdout
    listing = cli("versions", db=db_url).stdout.splitlines()
    assert [row.split()[0] for row in listing] == ["3", "2", "1"]
    assert "rollback to 1" in listing[0] and "initial" in listing[2]
    assert await site_in(sessions) == site_of(HQ)

    exported = cli("export", db=db_url)
    assert exported.returncode == 0, exported.stderr
    assert yaml.safe_load(exported.stdout)["facilities"][0]["code"] == "HQ"
    out = tmp_path / "export.yaml"
    out.write_text(exported.stdout)
    assert cli("apply", str(out), db=db_url).stdout.strip() == "no changes"
    assert cli("rollback", "42", db=db_url).returncode == 1


async def test_applying_part_of_a_deployment_removes_nothing_else_without_prune(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await seed_people(sessions)
    hq, field = EXAMPLES / "hq.yaml", EXAMPLES / "field-office.yaml"
    both = cli("apply", str(hq), str(field), db=db_url)
    assert both.returncode == 0, both.stderr
    # The README's command, after both files were applied: it once removed the field office
    # and everything in it without a word.
    part = cli("apply", str(hq), db=db_url)
    assert part.returncode == 1
    assert "records that these files do not describe would be removed" in part.stderr
    assert "facility DEN" in part.stderr, part.stderr
    assert "nothing was applied" in part.stderr
    dry = cli("apply", "--dry-run", str(hq), db=db_url)
    assert dry.returncode == 0 and "would be refused: " in dry.stdout, dry.stdout
    codes = {f.code for f in await facilities_in(sessions)}
    assert codes == {"HQ", "DEN"}
    # Said explicitly, the same apply removes them.
    done = cli("apply", "--prune", str(hq), db=db_url)
    assert done.returncode == 0, done.stderr
    assert {f.code for f in await facilities_in(sessions)} == {"HQ"}


async def facilities_in(sessions: async_sessionmaker[AsyncSession]) -> list[Facility]:
    async with sessions() as s:
        return list((await s.scalars(select(Facility))).all())
