"""Schedules, holiday calendars, groups and access levels edited through the API, and
decisions following each edit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accessd.config import Settings
from tests.conftest import Operators
from tests.helpers import (
    act,
    adjudicate,
    make_person,
    ok,
    problem,
    sponsor,
    upcoming,
    upcoming_christmas,
)

UUID = "00000000-0000-4000-8000-0000000000bb"
MONDAY_10AM = upcoming(0)
CHRISTMAS = upcoming_christmas().isoformat()
CHRISTMAS_10AM = f"{CHRISTMAS}T15:00:00Z"


async def site(client: httpx.AsyncClient, fm: dict[str, str]) -> dict[str, Any]:
    fac = ok(
        await client.post(
            "/v1/facilities",
            json={"code": "HQ", "name": "HQ", "timezone": "America/New_York", "security_level": 3},
            headers=fm,
        ),
        201,
    )
    area = ok(
        await client.post(
            "/v1/areas",
            json={"facility_id": fac["id"], "name": "Lobby", "area_class": "controlled"},
            headers=fm,
        ),
        201,
    )
    door = ok(
        await client.post("/v1/doors", json={"area_id": area["id"], "name": "Main"}, headers=fm),
        201,
    )
    reader = ok(
        await client.post(
            "/v1/readers",
            json={"door_id": door["id"], "name": "Main in", "direction": "in"},
            headers=fm,
        ),
        201,
    )
    return {"facility": fac, "area": area, "door": door, "reader": reader}


@pytest.fixture
def settings(db_url: str) -> Settings:
    """These tests drive decisions with a reader's claim ("pki_cak" on its word) to see the
    policy objects at work, so they allow such claims explicitly."""
    return Settings(database_url=db_url, require_card_proofs=False)


async def card_holder(client: httpx.AsyncClient, ops: Operators) -> dict[str, Any]:
    person = await make_person(client, await ops.headers("registrar"))
    await adjudicate(client, await ops.headers("adjudicator"), person["id"])
    cred = await sponsor(client, await ops.headers("sponsor"), person["id"], card_uuid=UUID)
    for action, role in (
        ("enroll", "registrar"),
        ("adjudicate", "adjudicator"),
        ("issue", "issuer"),
        ("activate", "issuer"),
    ):
        ok(await act(client, await ops.headers(role), cred["id"], action))
    return person


async def decide(client: httpx.AsyncClient, ops: Operators, reader: int, at: str) -> Any:
    state = client._transport.app.state.accessd  # type: ignore[attr-defined]
    await state.decisions.refresh()
    return ok(
        await client.post(
            "/v1/decisions",
            json={
                "reader_id": reader,
                "credential": {"kind": "card_uuid", "value": UUID},
                "evidence": ["pki_cak"],
                "at": at,
            },
            # An auditor too: these tests read the trail, which a plain door is not given.
            headers=await ops.headers("door_reader", "auditor", readers=[reader]),
        )
    )


async def test_levels_groups_schedules_and_holidays_drive_decisions(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    fm = await ops.headers("facility_manager")
    s = await site(client, fm)
    person = await card_holder(client, ops)
    reader = s["reader"]["id"]

    cal = ok(
        await client.post(
            "/v1/holiday-calendars",
            json={"name": "federal", "days": {CHRISTMAS: "Christmas Day"}},
            headers=fm,
        ),
        201,
    )
    assert cal["days"] == {CHRISTMAS: "Christmas Day"}
    sched = ok(
        await client.post(
            "/v1/schedules",
            json={
                "name": "office",
                "week": {"mon-fri": ["07:00-19:00"]},
                "holiday_calendars": ["federal"],
            },
            headers=fm,
        ),
        201,
    )
    assert sched["week"] == {"mon-fri": ["07:00-19:00"]}
    group = ok(await client.post("/v1/groups", json={"name": "staff"}, headers=fm), 201)
    level = ok(
        await client.post(
            "/v1/access-levels",
            json={"name": "Lobby", "schedule_id": sched["id"], "door_ids": [s["door"]["id"]]},
            headers=fm,
        ),
        201,
    )
    assert level["door_ids"] == [s["door"]["id"]]
    ok(
        await client.post(
            f"/v1/access-levels/{level['id']}/grants", json={"group_id": group["id"]}, headers=fm
        ),
        201,
    )

    assert (await decide(client, ops, reader, MONDAY_10AM))["reason"] == "no_access_level"
    ok(await client.put(f"/v1/groups/{group['id']}/members/{person['id']}", headers=fm), 204)
    assert ok(await client.get(f"/v1/groups/{group['id']}/members", headers=fm)) == [person["id"]]
    assert (await decide(client, ops, reader, MONDAY_10AM))["granted"]
    assert (await decide(client, ops, reader, CHRISTMAS_10AM))["reason"] == "outside_schedule"

    # Open on holidays 09:00-17:00 from now on.
    ok(
        await client.patch(
            f"/v1/schedules/{sched['id']}",
            json={"on_holidays": ["09:00-17:00"]},
            headers={**fm, "If-Match": f'"{sched["version"]}"'},
        )
    )
    assert (await decide(client, ops, reader, CHRISTMAS_10AM))["granted"]

    ok(await client.delete(f"/v1/groups/{group['id']}/members/{person['id']}", headers=fm), 204)
    assert (await decide(client, ops, reader, MONDAY_10AM))["reason"] == "no_access_level"
    grant = ok(
        await client.post(
            f"/v1/access-levels/{level['id']}/grants", json={"person_id": person["id"]}, headers=fm
        ),
        201,
    )
    assert (await decide(client, ops, reader, MONDAY_10AM))["granted"]
    ok(
        await client.delete(f"/v1/access-levels/{level['id']}/grants/{grant['id']}", headers=fm),
        204,
    )
    assert (await decide(client, ops, reader, MONDAY_10AM))["reason"] == "no_access_level"


async def test_bad_policy_objects_are_refused(client: httpx.AsyncClient, ops: Operators) -> None:
    fm = await ops.headers("facility_manager")
    problem(
        await client.post(
            "/v1/schedules", json={"name": "x", "week": {"funday": ["07:00-19:00"]}}, headers=fm
        ),
        422,
        "bad_schedule",
    )
    problem(
        await client.post(
            "/v1/schedules", json={"name": "x", "week": {"mon": ["19:00-07:00"]}}, headers=fm
        ),
        422,
        "bad_schedule",
    )
    problem(
        await client.post(
            "/v1/schedules",
            json={"name": "x", "week": {"mon": ["07:00-12:00", "11:00-13:00"]}},
            headers=fm,
        ),
        422,
        "bad_schedule",
    )
    problem(
        await client.post(
            "/v1/schedules",
            json={"name": "x", "week": {}, "holiday_calendars": ["nope"]},
            headers=fm,
        ),
        422,
        "bad_reference",
    )
    ok(await client.post("/v1/groups", json={"name": "g"}, headers=fm), 201)
    problem(await client.post("/v1/groups", json={"name": "g"}, headers=fm), 409)
    level = ok(await client.post("/v1/access-levels", json={"name": "L"}, headers=fm), 201)
    problem(
        await client.post(f"/v1/access-levels/{level['id']}/grants", json={}, headers=fm),
        422,
        "bad_grant",
    )
    problem(
        await client.patch(
            f"/v1/access-levels/{level['id']}",
            json={"door_ids": [999]},
            headers={**fm, "If-Match": '"1"'},
        ),
        422,
        "bad_reference",
    )
    problem(
        await client.patch(f"/v1/access-levels/{level['id']}", json={"name": "M"}, headers=fm), 428
    )


async def test_area_and_door_policy_fields_through_the_api(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    fm = await ops.headers("facility_manager")
    s = await site(client, fm)
    scif = ok(
        await client.post(
            "/v1/areas",
            json={
                "facility_id": s["facility"]["id"],
                "parent_id": s["area"]["id"],
                "name": "SCIF",
                "area_class": "exclusion",
                "is_scif": True,
                "min_eligibility": "ts_sci",
                "programs": ["ALPHA"],
                "two_person_window_s": 30,
                "anti_passback": "hard",
                "occupancy_limit": 12,
            },
            headers=fm,
        ),
        201,
    )
    assert (scif["min_eligibility"], scif["programs"], scif["occupancy_limit"]) == (
        "ts_sci",
        ["ALPHA"],
        12,
    )
    problem(
        await client.post(
            "/v1/doors",
            json={"area_id": scif["id"], "name": "Vault", "mode": "first_person_in"},
            headers=fm,
        ),
        422,
        "schedule_required",
    )
    door = ok(
        await client.post(
            "/v1/doors",
            json={
                "area_id": scif["id"],
                "from_area_id": s["area"]["id"],
                "name": "Vault",
                "mode": "card_and_pin",
                "accepts": ["pki_auth", "bio"],
            },
            headers=fm,
        ),
        201,
    )
    assert door["accepts"] == ["pki_auth", "bio"] and door["mode"] == "card_and_pin"
    state = client._transport.app.state.accessd  # type: ignore[attr-defined]
    await state.decisions.refresh()
    area = state.decisions.snapshot.areas[scif["id"]]
    assert area.two_person_window_s == 30 and area.programs == frozenset({"ALPHA"})
    assert state.decisions.snapshot.doors[door["id"]].mode == "card_and_pin"


async def test_threat_rules_through_the_api_restrict_doors_to_groups(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    fm = await ops.headers("facility_manager")
    s = await site(client, fm)
    person = await card_holder(client, ops)
    reader = s["reader"]["id"]
    level = ok(
        await client.post(
            "/v1/access-levels", json={"name": "Lobby", "door_ids": [s["door"]["id"]]}, headers=fm
        ),
        201,
    )
    ok(
        await client.post(
            f"/v1/access-levels/{level['id']}/grants", json={"person_id": person["id"]}, headers=fm
        ),
        201,
    )
    fac = s["facility"]
    problem(
        await client.patch(
            f"/v1/facilities/{fac['id']}",
            json={"threat_rules": {"high": {"min_factors": 1, "only_groups": ["guards"]}}},
            headers={**fm, "If-Match": f'"{fac["version"]}"'},
        ),
        422,
        "bad_reference",
    )
    ok(await client.post("/v1/groups", json={"name": "guards"}, headers=fm), 201)
    updated = ok(
        await client.patch(
            f"/v1/facilities/{fac['id']}",
            json={"threat_rules": {"high": {"min_factors": 1, "only_groups": ["guards"]}}},
            headers={**fm, "If-Match": f'"{fac["version"]}"'},
        )
    )
    assert updated["threat_rules"] == {"high": {"min_factors": 1, "only_groups": ["guards"]}}
    assert (await decide(client, ops, reader, MONDAY_10AM))["granted"]
    ok(
        await client.put(
            f"/v1/facilities/{fac['id']}/threat-level",
            json={"level": "high"},
            headers=await ops.headers("security_officer"),
        )
    )
    d = await decide(client, ops, reader, MONDAY_10AM)
    assert d["reason"] == "threat_level_restricted" and any("guards" in t for t in d["trail"])


async def test_policy_objects_refuse_as_the_site_records_do(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    """One CRUD path, one set of codes: a taken name is 409 duplicate, deleting what
    another record uses is 409 in_use, naming a record that does not exist is 422
    bad_reference, as for facilities, areas and doors."""
    fm = await ops.headers("facility_manager")
    days = {"name": "Days", "week": {"mon-fri": ["07:00-19:00"]}}
    sched = ok(await client.post("/v1/schedules", json=days, headers=fm), 201)
    problem(await client.post("/v1/schedules", json=days, headers=fm), 409, "duplicate")
    ok(await client.post("/v1/groups", json={"name": "g"}, headers=fm), 201)
    problem(await client.post("/v1/groups", json={"name": "g"}, headers=fm), 409, "duplicate")
    body = {"name": "L", "schedule_id": sched["id"]}
    level = ok(await client.post("/v1/access-levels", json=body, headers=fm), 201)
    v1 = {**fm, "If-Match": '"1"'}
    problem(await client.delete(f"/v1/schedules/{sched['id']}", headers=v1), 409, "in_use")
    ok(await client.get(f"/v1/schedules/{sched['id']}", headers=fm))
    nowhere = {"name": "M", "schedule_id": 987_654}
    problem(await client.post("/v1/access-levels", json=nowhere, headers=fm), 422, "bad_reference")
    url = f"/v1/access-levels/{level['id']}"
    problem(
        await client.patch(url, json={"schedule_id": 987_654}, headers=v1), 422, "bad_reference"
    )
    assert ok(await client.get(url, headers=fm))["schedule_id"] == sched["id"]


async def test_policy_object_lists_page_by_id(client: httpx.AsyncClient, ops: Operators) -> None:
    fm = await ops.headers("facility_manager")
    made = [
        ok(await client.post("/v1/groups", json={"name": f"g{n}"}, headers=fm), 201)["id"]
        for n in range(5)
    ]
    seen: list[int] = []
    after: int | None = 0
    while after is not None:
        params = {"after": after, "limit": 2}
        page = ok(await client.get("/v1/groups", params=params, headers=fm))
        assert len(page["items"]) <= 2
        seen += [g["id"] for g in page["items"]]
        after = page["next_after"]
    assert seen == made
