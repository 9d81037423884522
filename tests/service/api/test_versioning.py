"""Optimistic concurrency: updates name the version they read, and a lost update is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Operators
from tests.helpers import make_person, ok, problem, sponsor

Json = dict[str, Any]


@dataclass
class Target:
    """One versioned resource: where it is, who may change it, two conflicting changes."""

    url: str
    writer: dict[str, str]
    reader: dict[str, str]
    field: str
    first: Any
    second: Any


async def _person(client: httpx.AsyncClient, ops: Operators) -> Target:
    registrar = await ops.headers("registrar")
    p = await make_person(client, registrar)
    return Target(f"/v1/people/{p['id']}", registrar, registrar, "organization", "A", "B")


async def _security(client: httpx.AsyncClient, ops: Operators) -> Target:
    p = await make_person(client, await ops.headers("registrar"))
    adjudicator = await ops.headers("adjudicator")
    return Target(
        f"/v1/people/{p['id']}/security",
        adjudicator,
        adjudicator,
        "investigation_tier",
        "tier1",
        "tier5",
    )


async def _credential(client: httpx.AsyncClient, ops: Operators) -> Target:
    p = await make_person(client, await ops.headers("registrar"))
    c = await sponsor(client, await ops.headers("sponsor"), p["id"])
    issuer = await ops.headers("issuer")
    return Target(f"/v1/credentials/{c['id']}", issuer, issuer, "badge_number", "B-1", "B-2")


async def _facility(client: httpx.AsyncClient, ops: Operators) -> Target:
    fm = await ops.headers("facility_manager")
    body = {"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": 2}
    f = ok(await client.post("/v1/facilities", json=body, headers=fm), 201)
    return Target(f"/v1/facilities/{f['id']}", fm, fm, "name", "North", "South")


async def _operator(client: httpx.AsyncClient, ops: Operators) -> Target:
    admin = await ops.headers("admin")
    op_id, _ = await ops.make("sponsor")
    return Target(f"/v1/operators/{op_id}", admin, admin, "display_name", "Ann", "Bea")


TARGETS: dict[str, Callable[[httpx.AsyncClient, Operators], Awaitable[Target]]] = {
    "person": _person,
    "security": _security,
    "credential": _credential,
    "facility": _facility,
    "operator": _operator,
}


@pytest.fixture(params=sorted(TARGETS))
async def target(
    request: pytest.FixtureRequest, client: httpx.AsyncClient, ops: Operators
) -> Target:
    return await TARGETS[request.param](client, ops)


async def read(client: httpx.AsyncClient, t: Target) -> tuple[Json, str]:
    r = await client.get(t.url, headers=t.reader)
    body: Json = ok(r)
    return body, r.headers["etag"]


async def patch(
    client: httpx.AsyncClient, t: Target, value: Any, if_match: str | None
) -> httpx.Response:
    headers = dict(t.writer)
    if if_match is not None:
        headers["If-Match"] = if_match
    return await client.patch(t.url, json={t.field: value}, headers=headers)


async def test_get_returns_the_version_as_etag(client: httpx.AsyncClient, target: Target) -> None:
    body, tag = await read(client, target)
    assert tag == f'"{body["version"]}"'


async def test_update_without_if_match_is_428_and_changes_nothing(
    client: httpx.AsyncClient, target: Target
) -> None:
    before, _ = await read(client, target)
    problem(await patch(client, target, target.first, None), 428, "if_match_required")
    after, _ = await read(client, target)
    assert after == before


async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, target: Target
) -> None:
    _, tag = await read(client, target)
    updated = ok(await patch(client, target, target.first, tag))
    body = problem(await patch(client, target, target.second, tag), 412, "stale_version")
    assert body["current_version"] == updated["version"]
    after, _ = await read(client, target)
    assert after[target.field] == target.first
    assert after["version"] == updated["version"]


async def test_malformed_if_match_is_422_and_changes_nothing(
    client: httpx.AsyncClient, target: Target
) -> None:
    before, _ = await read(client, target)
    for header in ("abc", '"1", "2"', "*", '"-1"', '"1e3"', '"' + "9" * 19 + '"', ""):
        r = await patch(client, target, target.first, header)
        problem(r, 422, "bad_if_match")
    after, _ = await read(client, target)
    assert after == before


async def test_update_bumps_version_and_etag_by_one(
    client: httpx.AsyncClient, target: Target
) -> None:
    before, tag = await read(client, target)
    r = await patch(client, target, target.first, tag)
    body = ok(r)
    assert body["version"] == before["version"] + 1
    assert r.headers["etag"] == f'"{before["version"] + 1}"'
    again, tag2 = await read(client, target)
    assert again["version"] == body["version"] and tag2 == r.headers["etag"]
    assert again[target.field] == target.first


async def test_two_clients_with_the_same_read_one_wins_one_is_refused(
    client: httpx.AsyncClient, target: Target
) -> None:
    """The classic lost update: both read version n, both write; the second must not win."""
    _, alice_tag = await read(client, target)
    _, bob_tag = await read(client, target)
    assert alice_tag == bob_tag
    ok(await patch(client, target, target.first, alice_tag))
    problem(await patch(client, target, target.second, bob_tag), 412, "stale_version")
    after, _ = await read(client, target)
    assert after[target.field] == target.first


async def test_concurrent_updates_of_one_version_exactly_one_succeeds(
    client: httpx.AsyncClient, target: Target
) -> None:
    before, tag = await read(client, target)
    values = [target.first, target.second] * 3
    responses = await asyncio.gather(*(patch(client, target, v, tag) for v in values))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * (len(values) - 1), [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    after, _ = await read(client, target)
    assert after["version"] == before["version"] + 1
    assert after[target.field] == winner[target.field]


async def test_unchanged_update_keeps_the_version(
    client: httpx.AsyncClient, target: Target
) -> None:
    _, tag = await read(client, target)
    first = ok(await patch(client, target, target.first, tag))
    same = ok(await patch(client, target, target.first, f'"{first["version"]}"'))
    assert same["version"] == first["version"]


async def test_concurrent_updates_leave_exactly_one_audit_entry(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    t = await _person(client, ops)
    _, tag = await read(client, t)
    await asyncio.gather(*(patch(client, t, f"Org {i}", tag) for i in range(5)))
    auditor = await ops.headers("auditor")
    person_id = t.url.rsplit("/", 1)[1]
    entries = ok(
        await client.get(
            "/v1/audit", params={"entity": "person", "entity_id": person_id}, headers=auditor
        )
    )["items"]
    assert [e["action"] for e in entries] == ["person.create", "person.update"]
    assert ok(await client.get("/v1/audit/verify", headers=auditor))["ok"] is True


async def test_certificate_change_alone_bumps_the_credential_version(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    """Only child rows change, yet a concurrent writer must still see a new version."""
    t = await _credential(client, ops)
    before, tag = await read(client, t)
    cert = {"slot": "9A", "sha256": "ab" * 32}
    r = await client.patch(
        t.url, json={"certificates": [cert]}, headers={**t.writer, "If-Match": tag}
    )
    assert ok(r)["version"] == before["version"] + 1
    problem(await patch(client, t, "B-9", tag), 412, "stale_version")


async def test_lifecycle_action_with_a_stale_if_match_is_refused(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    """If-Match is optional on actions, but when sent it is checked."""
    t = await _credential(client, ops)
    _, tag = await read(client, t)
    ok(await patch(client, t, "B-1", tag))
    registrar = await ops.headers("registrar")
    r = await client.post(
        f"{t.url}/enroll", json={"reason": ""}, headers={**registrar, "If-Match": tag}
    )
    problem(r, 412, "stale_version")
    assert (await read(client, t))[0]["state"] == "requested"
    fresh = (await read(client, t))[1]
    r = await client.post(
        f"{t.url}/enroll", json={"reason": ""}, headers={**registrar, "If-Match": fresh}
    )
    assert ok(r)["state"] == "enrolled"
