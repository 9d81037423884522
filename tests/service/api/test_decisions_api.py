"""POST /v1/decisions end to end on both databases: a site applied from a policy file,
people and cards made through the API, decisions explained, a revocation denied on the
very next request, and every decision stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.config import Settings
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from tests.conftest import Operators
from tests.helpers import act, adjudicate, make_person, ok, problem, sponsor, upcoming

UUID = "00000000-0000-4000-8000-0000000000aa"

POLICY = """\
version: 1
schedules:
  - name: office-hours
    week: {mon-fri: ["07:00-19:00"]}
groups:
  - name: staff
    members: [E1]
facilities:
  - code: HQ
    name: Headquarters
    timezone: America/New_York
    security_level: 3
    areas:
      - name: Lobby
        class: controlled
        escort: {required: false}
        areas:
          - name: Offices
            class: limited
            escort: {required: false}
    doors:
      - name: Main entrance
        into: Lobby
        accepts: [pki_cak, pki_auth]
        readers: [{name: Main in, direction: in, contactless: true}]
      - name: Office door
        into: Offices
        from: Lobby
        accepts: [pki_auth]
        readers: [{name: Office in, direction: in, contact: true, pin_pad: true}]
access_levels:
  - name: Staff
    schedule: office-hours
    doors: [HQ/Main entrance, HQ/Office door]
    groups: [staff]
"""

MONDAY_10AM = upcoming(0)
SUNDAY_10AM = upcoming(6)


@pytest.fixture
def settings(db_url: str) -> Settings:
    """These tests exercise the door policy with readers' claims ("pki_cak" on a reader's
    word), so they turn require_card_proofs off explicitly; proofs are
    tests/service/pki/test_card_authentication.py's."""
    return Settings(database_url=db_url, require_card_proofs=False)


async def setup_site(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    registrar = await ops.headers("registrar")
    person = await make_person(client, registrar, external_id="E1")
    await adjudicate(client, await ops.headers("adjudicator"), person["id"])
    cred = await sponsor(client, await ops.headers("sponsor"), person["id"], card_uuid=UUID)
    for action, role in (
        ("enroll", "registrar"),
        ("adjudicate", "adjudicator"),
        ("issue", "issuer"),
        ("activate", "issuer"),
    ):
        ok(await act(client, await ops.headers(role), cred["id"], action))
    async with sessions() as s:
        await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
        await s.commit()
    state = client._transport.app.state.accessd  # type: ignore[attr-defined]
    await state.decisions.refresh()
    readers = ok(await client.get("/v1/readers", headers=await ops.headers("facility_manager")))
    by_name = {r["name"]: r["id"] for r in readers["items"]}
    return {
        "person": person,
        "cred": cred,
        "main": by_name["Main in"],
        "office": by_name["Office in"],
        "state": state,
    }


def ask(reader: int, at: str, *evidence: str, value: str = UUID) -> dict[str, Any]:
    return {
        "reader_id": reader,
        "credential": {"kind": "card_uuid", "value": value},
        "evidence": list(evidence),
        "at": at,
    }


async def test_decisions_are_explained_stored_and_follow_revocation(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    reader_hdr = await ops.headers("door_reader", readers=[site["main"], site["office"]])
    granted = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    assert granted["granted"] and granted["reason"] == "granted", granted
    assert granted["unlock_seconds"] == 5
    # The door is told to open, not whose card it was; the log (below) explains it.
    assert (granted["person_id"], granted["credential_id"], granted["trail"]) == (None, None, [])

    pin_needed = ok(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    assert (pin_needed["granted"], pin_needed["reason"], pin_needed["required"]) == (
        False,
        "factors_missing",
        ["pin"],
    )
    weekend = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], SUNDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    assert weekend["reason"] == "outside_schedule"
    unknown = ok(
        await client.post(
            "/v1/decisions",
            json=ask(
                site["main"], MONDAY_10AM, "pki_cak", value="00000000-0000-4000-8000-0000000000ff"
            ),
            headers=reader_hdr,
        )
    )
    assert unknown["reason"] == "unknown_credential"

    # A security officer suspends the card; the very next request is denied.
    officer = await ops.headers("security_officer")
    ok(await act(client, officer, site["cred"]["id"], "suspend", "reported by supervisor"))
    after = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    assert after["reason"] == "credential_not_active"

    await site["state"].decisions.store.flush()
    events = ok(await client.get("/v1/decisions", headers=officer))["items"]
    assert [e["reason"] for e in events] == [
        "granted",
        "factors_missing",
        "outside_schedule",
        "unknown_credential",
        "credential_not_active",
    ]
    assert all(e["trail"] for e in events)
    assert events[0]["person_id"] == site["person"]["id"]
    assert any("Staff" in line for line in events[0]["trail"])
    only_granted = ok(await client.get("/v1/decisions?granted=true", headers=officer))["items"]
    assert len(only_granted) == 1


async def test_a_vetting_alert_denies_at_once(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    reader_hdr = await ops.headers("door_reader", readers=[site["main"], site["office"]])
    ok(
        await client.post(
            f"/v1/people/{site['person']['id']}/alerts",
            json={
                "source": "CV",
                "category": "criminal",
                "suspends_eligibility": True,
            },
            headers=await ops.headers("security_officer"),
        ),
        201,
    )
    d = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    # The door is not told that the person's eligibility is suspended.
    assert not d["granted"] and d["reason"] in {"credential_not_active", "not_authorized"}


async def test_bad_decision_requests_are_refused_not_crashed(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    # Bound to reader 99, which does not exist: the engine says so, as for any reader.
    reader_hdr = await ops.headers("door_reader", readers=[1, 99])
    problem(await client.post("/v1/decisions", json={"reader_id": 1}, headers=reader_hdr), 422)
    problem(
        await client.post(
            "/v1/decisions", json=ask(1, MONDAY_10AM, "telepathy"), headers=reader_hdr
        ),
        422,
    )
    problem(
        await client.post(
            "/v1/decisions", json=ask(1, MONDAY_10AM.removesuffix("Z")), headers=reader_hdr
        ),
        422,
        "naive_time",
    )
    unknown_reader = ok(
        await client.post("/v1/decisions", json=ask(99, MONDAY_10AM), headers=reader_hdr)
    )
    assert unknown_reader["reason"] == "unknown_reader"
    problem(
        await client.post(
            "/v1/decisions", json=ask(1, MONDAY_10AM), headers=await ops.headers("auditor")
        ),
        403,
    )


async def test_threat_level_takes_effect_on_the_next_decision(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    reader_hdr = await ops.headers("door_reader", readers=[site["main"], site["office"]])
    officer = await ops.headers("security_officer")
    assert ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )["granted"]
    facility = ok(await client.get("/v1/facilities", headers=officer))["items"][0]
    body = ok(
        await client.put(
            f"/v1/facilities/{facility['id']}/threat-level",
            json={"level": "elevated", "reason": "drill"},
            headers=officer,
        )
    )
    assert body["level"] == "elevated"
    raised = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=reader_hdr
        )
    )
    assert (raised["reason"], raised["required"]) == ("factors_missing", ["pin"])
    problem(
        await client.put(
            f"/v1/facilities/{facility['id']}/threat-level",
            json={"level": "severe"},
            headers=officer,
        ),
        422,
    )
    problem(
        await client.put(
            f"/v1/facilities/{facility['id']}/threat-level",
            json={"level": "high"},
            headers=await ops.headers("auditor"),
        ),
        403,
    )


async def test_who_can_open_and_where_can_a_person_go(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    fm = await ops.headers("facility_manager")
    doors = {d["name"]: d["id"] for d in ok(await client.get("/v1/doors", headers=fm))["items"]}
    who = ok(
        await client.get(
            f"/v1/policy/doors/{doors['Office door']}/who", params={"at": MONDAY_10AM}, headers=fm
        )
    )
    assert [a["person_id"] for a in who["answers"]] == [site["person"]["id"]]
    weekend = ok(
        await client.get(
            f"/v1/policy/doors/{doors['Office door']}/who", params={"at": SUNDAY_10AM}, headers=fm
        )
    )
    assert weekend["answers"] == []
    everyone = ok(
        await client.get(
            f"/v1/policy/doors/{doors['Office door']}/who",
            params={"at": SUNDAY_10AM, "allowed_only": "false"},
            headers=fm,
        )
    )
    assert [a["reason"] for a in everyone["answers"]] == ["outside_schedule"]
    lockdown = ok(
        await client.get(
            f"/v1/policy/doors/{doors['Main entrance']}/who",
            params={"at": MONDAY_10AM, "threat": "lockdown"},
            headers=fm,
        )
    )
    assert lockdown["answers"] == []  # nobody is in a lockdown group
    where = ok(
        await client.get(
            f"/v1/policy/people/{site['person']['id']}/where",
            params={"at": MONDAY_10AM},
            headers=fm,
        )
    )
    assert sorted(a["door_id"] for a in where["answers"]) == sorted(doors.values())
    problem(await client.get("/v1/policy/people/999999/where", headers=fm), 404)


async def test_hard_anti_passback_and_operator_forgiveness(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    fm = await ops.headers("facility_manager")
    offices = next(
        a for a in ok(await client.get("/v1/areas", headers=fm))["items"] if a["name"] == "Offices"
    )
    ok(
        await client.patch(
            f"/v1/areas/{offices['id']}",
            json={"anti_passback": "hard"},
            headers={**fm, "If-Match": f'"{offices["version"]}"'},
        )
    )
    await site["state"].decisions.refresh()
    reader_hdr = await ops.headers("door_reader", readers=[site["main"], site["office"]])
    first = ok(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_auth"), headers=reader_hdr
        )
    )
    assert first["granted"], first
    again = ok(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_auth"), headers=reader_hdr
        )
    )
    assert again["reason"] == "anti_passback"
    officer = await ops.headers("security_officer")
    ok(
        await client.post(
            f"/v1/policy/people/{site['person']['id']}/forgive",
            json={"reason": "door held open by a colleague"},
            headers=officer,
        ),
        204,
    )
    forgiven = ok(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_auth"), headers=reader_hdr
        )
    )
    assert forgiven["granted"]
    entries = ok(
        await client.get(
            "/v1/audit", params={"entity": "presence"}, headers=await ops.headers("auditor")
        )
    )["items"]
    assert [e["action"] for e in entries] == ["presence.forgive"]
    problem(
        await client.post(f"/v1/policy/people/{site['person']['id']}/forgive", json={}, headers=fm),
        403,
    )


async def test_compliance_and_impact_over_http(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    fm = await ops.headers("facility_manager")
    reports = ok(await client.get("/v1/policy/compliance", params={"facility": "HQ"}, headers=fm))
    assert [r["code"] for r in reports] == ["HQ"]
    problem(await client.get("/v1/policy/compliance", params={"facility": "NOPE"}, headers=fm), 404)
    # Dropping the office door from the level: the person loses the Offices, nothing else.
    changed = POLICY.replace(
        "doors: [HQ/Main entrance, HQ/Office door]", "doors: [HQ/Main entrance]"
    )
    found = ok(
        await client.post(
            "/v1/policy/impact",
            content=changed.encode(),
            headers={**fm, "content-type": "application/yaml"},
        )
    )
    assert found["gained"] == []
    assert [(x["person"]["external_id"], x["area"]) for x in found["lost"]] == [
        ("E1", "HQ/Offices")
    ]
    bad = problem(
        await client.post("/v1/policy/impact", content=b"version: 1\nfacilities: 7\n", headers=fm),
        422,
        "policy_invalid",
    )
    assert bad["findings"]
    # Nothing was applied.
    levels = ok(await client.get("/v1/access-levels", headers=fm))["items"]
    assert len(levels[0]["door_ids"]) == 2
    del site


async def test_moments_out_of_range_are_a_clear_422_not_a_500(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    reader_hdr = await ops.headers("door_reader", readers=[site["main"], site["office"]])
    reading = await ops.headers("facility_manager")
    # Year 1 at +14:00 and year 9999 at -14:00 overflow when taken to UTC; before, a 500.
    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1900-01-01T00:00:00Z"):
        body = problem(
            await client.post("/v1/decisions", json=ask(site["main"], at), headers=reader_hdr),
            422,
            "validation",
        )
        assert "must fall between the years 1970 and 2999" in body["detail"], body
        door = site["state"].decisions.snapshot.readers[site["main"]].door_id
        problem(
            await client.get(f"/v1/policy/doors/{door}/who", params={"at": at}, headers=reading),
            422,
            "validation",
        )
