"""Facilities, areas, panels, doors and readers: CRUD and the relationships the service checks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Operators
from tests.helpers import ok, problem

Json = dict[str, Any]
PLURAL = {
    "facility": "facilities",
    "area": "areas",
    "panel": "panels",
    "door": "doors",
    "reader": "readers",
}


@pytest.fixture
async def fm(ops: Operators) -> dict[str, str]:
    return await ops.headers("facility_manager")


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str, **body: Any
) -> Json:
    r = await client.post(f"/v1/{kind}", json=body, headers=headers)
    created: Json = ok(r, 201)
    assert r.headers["location"] == f"/v1/{kind}/{created['id']}"
    assert r.headers["etag"] == '"1"'
    return created


async def facility(client: httpx.AsyncClient, h: dict[str, str], code: str = "HQ") -> Json:
    return await create(
        client, h, "facilities", code=code, name=f"{code} campus", timezone="UTC", security_level=3
    )


async def area(
    client: httpx.AsyncClient, h: dict[str, str], facility_id: int, name: str, **extra: Any
) -> Json:
    return await create(
        client, h, "areas", facility_id=facility_id, name=name, area_class="limited", **extra
    )


async def patch(
    client: httpx.AsyncClient, h: dict[str, str], url: str, version: int, **body: Any
) -> httpx.Response:
    return await client.patch(url, json=body, headers={**h, "If-Match": f'"{version}"'})


async def remove(
    client: httpx.AsyncClient, h: dict[str, str], url: str, version: int | None
) -> httpx.Response:
    headers = dict(h) if version is None else {**h, "If-Match": f'"{version}"'}
    return await client.delete(url, headers=headers)


async def site(client: httpx.AsyncClient, h: dict[str, str], code: str = "HQ") -> Json:
    """A facility with one area, a panel, a door into the area and a reader on it."""
    f = await facility(client, h, code)
    a = await area(client, h, f["id"], "Lobby")
    p = await create(client, h, "panels", facility_id=f["id"], name="panel-1", transport="osdp")
    d = await create(client, h, "doors", area_id=a["id"], panel_id=p["id"], name="Main door")
    r = await create(
        client,
        h,
        "readers",
        door_id=d["id"],
        panel_id=p["id"],
        name="Main in",
        direction="in",
        osdp_address=1,
    )
    return {"facility": f, "area": a, "panel": p, "door": d, "reader": r}


async def test_crud_round_trip_for_every_record_type(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    s = await site(client, fm)
    changes = {
        "facility": {"name": "Headquarters", "security_level": 5, "address": "1 Main St"},
        "area": {"name": "Vault", "area_class": "exclusion", "is_scif": True},
        "panel": {"name": "panel-9", "transport": "mqtt"},
        "door": {"name": "Vault door"},
        "reader": {"name": "Vault in", "pin_pad": True, "osdp_address": 126},
    }
    for kind, record in s.items():
        url = f"/v1/{PLURAL[kind]}/{record['id']}"
        got = await client.get(url, headers=fm)
        assert ok(got) == record and got.headers["etag"] == '"1"'
        r = await patch(client, fm, url, 1, **changes[kind])
        updated = ok(r)
        assert r.headers["etag"] == '"2"' and updated["version"] == 2
        for field, value in changes[kind].items():
            assert updated[field] == value, (kind, field)
        assert ok(await client.get(url, headers=fm)) == updated
    # Deleting goes leaf first; each is gone afterwards.
    for kind in ("reader", "door", "panel", "area", "facility"):
        url = f"/v1/{PLURAL[kind]}/{s[kind]['id']}"
        ok(await remove(client, fm, url, 2), 204)
        problem(await client.get(url, headers=fm), 404, "not_found")


async def test_unknown_timezone_is_refused(client: httpx.AsyncClient, fm: dict[str, str]) -> None:
    body = {"code": "HQ", "name": "HQ", "security_level": 3}
    for tz in ("Mars/Olympus_Mons", "../../etc/passwd", "/UTC", "Europe/Berlin\x00"):
        r = await client.post("/v1/facilities", json={**body, "timezone": tz}, headers=fm)
        assert r.status_code == 422, (tz, r.text)
    problem(
        await client.post("/v1/facilities", json={**body, "timezone": "Mars/Base"}, headers=fm),
        422,
        "bad_timezone",
    )
    f = await facility(client, fm)
    url = f"/v1/facilities/{f['id']}"
    problem(await patch(client, fm, url, 1, timezone="Nowhere/Land"), 422, "bad_timezone")
    assert ok(await client.get(url, headers=fm))["timezone"] == "UTC"
    assert ok(await patch(client, fm, url, 1, timezone="America/New_York"))["version"] == 2


@pytest.mark.parametrize("level", [0, 6, -1, 1000, "three", 2.5, None])
async def test_security_level_outside_one_to_five_is_422(
    client: httpx.AsyncClient, fm: dict[str, str], level: object
) -> None:
    body = {"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": level}
    problem(await client.post("/v1/facilities", json=body, headers=fm), 422, "validation")
    f = await facility(client, fm, "F2")
    r = await patch(client, fm, f"/v1/facilities/{f['id']}", 1, security_level=level)
    problem(r, 422, "validation")


async def test_levels_one_and_five_are_accepted(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    for level in (1, 5):
        body = {"code": f"L{level}", "name": "x", "timezone": "UTC", "security_level": level}
        assert (
            ok(await client.post("/v1/facilities", json=body, headers=fm), 201)["security_level"]
            == level
        )


async def test_area_parent_in_another_facility_is_refused(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    one = await facility(client, fm, "ONE")
    two = await facility(client, fm, "TWO")
    outer = await area(client, fm, one["id"], "Outer")
    r = await client.post(
        "/v1/areas",
        json={
            "facility_id": two["id"],
            "parent_id": outer["id"],
            "name": "Inner",
            "area_class": "controlled",
        },
        headers=fm,
    )
    problem(r, 422, "bad_parent")
    other = await area(client, fm, two["id"], "Other")
    r = await patch(client, fm, f"/v1/areas/{other['id']}", 1, parent_id=outer["id"])
    problem(r, 422, "bad_parent")
    assert ok(await client.get(f"/v1/areas/{other['id']}", headers=fm))["parent_id"] is None


async def test_area_cycles_are_refused(client: httpx.AsyncClient, fm: dict[str, str]) -> None:
    f = await facility(client, fm)
    a = await area(client, fm, f["id"], "A")
    b = await area(client, fm, f["id"], "B", parent_id=a["id"])
    c = await area(client, fm, f["id"], "C", parent_id=b["id"])
    # B is inside A; putting A inside B closes a loop.
    problem(
        await patch(client, fm, f"/v1/areas/{a['id']}", 1, parent_id=b["id"]), 422, "area_cycle"
    )
    # So does putting A inside its grandchild, or inside itself.
    problem(
        await patch(client, fm, f"/v1/areas/{a['id']}", 1, parent_id=c["id"]), 422, "area_cycle"
    )
    problem(
        await patch(client, fm, f"/v1/areas/{a['id']}", 1, parent_id=a["id"]), 422, "area_cycle"
    )
    assert ok(await client.get(f"/v1/areas/{a['id']}", headers=fm))["parent_id"] is None
    # Un-nesting and re-nesting the other way round is fine.
    ok(await patch(client, fm, f"/v1/areas/{b['id']}", 1, parent_id=None))
    ok(await patch(client, fm, f"/v1/areas/{a['id']}", 1, parent_id=c["id"]))


async def test_area_referring_to_nothing_is_refused(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    body = {"facility_id": 4242, "name": "X", "area_class": "limited"}
    problem(await client.post("/v1/areas", json=body, headers=fm), 422, "bad_reference")
    f = await facility(client, fm)
    body = {"facility_id": f["id"], "parent_id": 4242, "name": "X", "area_class": "limited"}
    problem(await client.post("/v1/areas", json=body, headers=fm), 422, "bad_reference")


async def test_door_between_two_facilities_is_refused(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    one = await site(client, fm, "ONE")
    two = await site(client, fm, "TWO")
    body = {"area_id": one["area"]["id"], "from_area_id": two["area"]["id"], "name": "Tunnel"}
    problem(await client.post("/v1/doors", json=body, headers=fm), 422, "bad_reference")
    # Nor may a door use another facility's panel, or join an area to itself.
    body = {"area_id": one["area"]["id"], "panel_id": two["panel"]["id"], "name": "Side"}
    problem(await client.post("/v1/doors", json=body, headers=fm), 422, "bad_reference")
    body = {"area_id": one["area"]["id"], "from_area_id": one["area"]["id"], "name": "Loop"}
    problem(await client.post("/v1/doors", json=body, headers=fm), 422, "bad_reference")
    # Moving an existing door into the other facility while its panel stays behind.
    door = one["door"]
    r = await patch(client, fm, f"/v1/doors/{door['id']}", 1, area_id=two["area"]["id"])
    problem(r, 422, "bad_reference")
    assert ok(await client.get(f"/v1/doors/{door['id']}", headers=fm))["area_id"] == door["area_id"]
    # Two areas of one facility are fine.
    inner = await area(client, fm, one["facility"]["id"], "Inner")
    body = {"area_id": inner["id"], "from_area_id": one["area"]["id"], "name": "Inner door"}
    ok(await client.post("/v1/doors", json=body, headers=fm), 201)


@pytest.mark.parametrize("address", [-1, 127, 255, 70000])
async def test_reader_osdp_address_out_of_range_is_422(
    client: httpx.AsyncClient, fm: dict[str, str], address: int
) -> None:
    s = await site(client, fm)
    body = {"door_id": s["door"]["id"], "name": "R", "direction": "out", "osdp_address": address}
    problem(await client.post("/v1/readers", json=body, headers=fm), 422, "validation")
    url = f"/v1/readers/{s['reader']['id']}"
    problem(await patch(client, fm, url, 1, osdp_address=address), 422, "validation")
    assert ok(await client.get(url, headers=fm))["osdp_address"] == 1


async def test_reader_edges_of_the_osdp_range_and_none_are_accepted(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    s = await site(client, fm)
    url = f"/v1/readers/{s['reader']['id']}"
    for version, address in enumerate((0, 126, None), start=1):
        assert (
            ok(await patch(client, fm, url, version, osdp_address=address))["osdp_address"]
            == address
        )


async def test_reader_panel_of_another_facility_is_refused(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    one = await site(client, fm, "ONE")
    two = await site(client, fm, "TWO")
    body = {
        "door_id": one["door"]["id"],
        "panel_id": two["panel"]["id"],
        "name": "Cross",
        "direction": "in",
    }
    problem(await client.post("/v1/readers", json=body, headers=fm), 422, "bad_reference")
    url = f"/v1/readers/{one['reader']['id']}"
    problem(await patch(client, fm, url, 1, door_id=two["door"]["id"]), 422, "bad_reference")


async def test_duplicate_names_are_409(client: httpx.AsyncClient, fm: dict[str, str]) -> None:
    s = await site(client, fm)
    f_id = s["facility"]["id"]
    dupes = [
        ("facilities", {"code": "HQ", "name": "Other", "timezone": "UTC", "security_level": 1}),
        ("areas", {"facility_id": f_id, "name": "Lobby", "area_class": "controlled"}),
        ("panels", {"facility_id": f_id, "name": "panel-1", "transport": "mqtt"}),
        ("doors", {"area_id": s["area"]["id"], "name": "Main door"}),
    ]
    for kind, body in dupes:
        problem(await client.post(f"/v1/{kind}", json=body, headers=fm), 409, "duplicate")
    # Renaming onto a taken name is refused the same way, and changes nothing.
    second = await area(client, fm, f_id, "Office")
    url = f"/v1/areas/{second['id']}"
    problem(await patch(client, fm, url, 1, name="Lobby"), 409, "duplicate")
    assert ok(await client.get(url, headers=fm))["name"] == "Office"
    # The same area name in another facility is a different area.
    other = await facility(client, fm, "OTHER")
    await area(client, fm, other["id"], "Lobby")


async def test_delete_of_a_record_in_use_is_409_and_deletes_nothing(
    client: httpx.AsyncClient, fm: dict[str, str], ops: Operators
) -> None:
    s = await site(client, fm)
    inner = await area(client, fm, s["facility"]["id"], "Inner", parent_id=s["area"]["id"])
    for kind, record in (
        ("facilities", s["facility"]),  # areas and panels point at it
        ("areas", s["area"]),  # a door and a child area
        ("doors", s["door"]),  # a reader
    ):
        url = f"/v1/{kind}/{record['id']}"
        problem(await remove(client, fm, url, 1), 409, "in_use")
        assert ok(await client.get(url, headers=fm)) == record
    auditor = await ops.headers("auditor")
    log = ok(await client.get("/v1/audit", params={"limit": 1000}, headers=auditor))["items"]
    assert not [e for e in log if e["action"].endswith(".delete")]
    assert ok(await client.get("/v1/audit/verify", headers=auditor))["ok"] is True
    # Leaf first, everything goes.
    for kind, record in (
        ("readers", s["reader"]),
        ("doors", s["door"]),
        ("areas", inner),
        ("areas", s["area"]),
        ("panels", s["panel"]),
        ("facilities", s["facility"]),
    ):
        ok(await remove(client, fm, f"/v1/{kind}/{record['id']}", 1), 204)


async def test_deleting_a_panel_unwires_its_doors_and_readers(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    s = await site(client, fm)
    ok(await remove(client, fm, f"/v1/panels/{s['panel']['id']}", 1), 204)
    assert ok(await client.get(f"/v1/doors/{s['door']['id']}", headers=fm))["panel_id"] is None
    reader = ok(await client.get(f"/v1/readers/{s['reader']['id']}", headers=fm))
    assert reader["panel_id"] is None


async def test_delete_needs_the_current_version(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    f = await facility(client, fm)
    url = f"/v1/facilities/{f['id']}"
    problem(await remove(client, fm, url, None), 428, "if_match_required")
    ok(await patch(client, fm, url, 1, name="Renamed"))
    body = problem(await remove(client, fm, url, 1), 412, "stale_version")
    assert body["current_version"] == 2
    assert ok(await client.get(url, headers=fm))["name"] == "Renamed"
    ok(await remove(client, fm, url, 2), 204)
    problem(await remove(client, fm, url, 2), 404, "not_found")


async def test_list_filters_by_parent(client: httpx.AsyncClient, fm: dict[str, str]) -> None:
    one = await site(client, fm, "ONE")
    two = await site(client, fm, "TWO")
    extra = await area(client, fm, one["facility"]["id"], "Annex")

    async def ids(path: str, **params: int) -> list[int]:
        page = ok(await client.get(path, params=params, headers=fm))
        return [item["id"] for item in page["items"]]

    assert await ids("/v1/areas", facility_id=one["facility"]["id"]) == [
        one["area"]["id"],
        extra["id"],
    ]
    assert await ids("/v1/areas", facility_id=two["facility"]["id"]) == [two["area"]["id"]]
    assert await ids("/v1/areas") == [one["area"]["id"], two["area"]["id"], extra["id"]]
    assert await ids("/v1/panels", facility_id=two["facility"]["id"]) == [two["panel"]["id"]]
    assert await ids("/v1/doors", area_id=one["area"]["id"]) == [one["door"]["id"]]
    assert await ids("/v1/readers", door_id=two["door"]["id"]) == [two["reader"]["id"]]
    assert await ids("/v1/areas", facility_id=4242) == []


async def test_pagination_walks_every_record_once(
    client: httpx.AsyncClient, fm: dict[str, str]
) -> None:
    made = [(await facility(client, fm, f"F{i}"))["id"] for i in range(5)]
    seen: list[int] = []
    pages = 0
    after = 0
    while True:
        page = ok(
            await client.get("/v1/facilities", params={"limit": 2, "after": after}, headers=fm)
        )
        pages += 1
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_after"] is None:
            break
        assert page["next_after"] == page["items"][-1]["id"]
        after = page["next_after"]
    assert seen == made and pages == 3
    # A full last page points on to an empty one, which ends the walk.
    page = ok(await client.get("/v1/facilities", params={"limit": 5, "after": 0}, headers=fm))
    assert page["next_after"] == made[-1]
    last = ok(
        await client.get("/v1/facilities", params={"limit": 5, "after": made[-1]}, headers=fm)
    )
    assert last == {"items": [], "next_after": None}
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        problem(await client.get("/v1/facilities", params=bad, headers=fm), 422, "validation")


async def test_unknown_ids_are_404(client: httpx.AsyncClient, fm: dict[str, str]) -> None:
    for kind in ("facilities", "areas", "panels", "doors", "readers"):
        problem(await client.get(f"/v1/{kind}/4242", headers=fm), 404, "not_found")
        problem(await patch(client, fm, f"/v1/{kind}/4242", 1, name="x"), 404, "not_found")
        problem(await remove(client, fm, f"/v1/{kind}/4242", 1), 404, "not_found")
