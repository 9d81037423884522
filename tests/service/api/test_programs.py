"""Program read-ins through the API, and the decision snapshot following them."""

from __future__ import annotations

import httpx

from tests.conftest import Operators
from tests.helpers import make_person, ok, problem


async def test_read_in_and_out_reach_the_decision_snapshot(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    person = await make_person(client, await ops.headers("registrar"))
    officer = await ops.headers("security_officer")
    url = f"/v1/people/{person['id']}/programs"
    ok(await client.post(url, json={"program": "ALPHA", "reason": "briefed"}, headers=officer), 201)
    problem(await client.post(url, json={"program": "ALPHA"}, headers=officer), 409, "duplicate")
    problem(await client.post(url, json={"program": "alpha lower"}, headers=officer), 422)
    assert [p["program"] for p in ok(await client.get(url, headers=officer))] == ["ALPHA"]
    decisions = client._transport.app.state.accessd.decisions  # type: ignore[attr-defined]
    await decisions.refresh()
    assert decisions.snapshot.people[person["id"]].programs == frozenset({"ALPHA"})
    ok(await client.delete(f"{url}/ALPHA", headers=officer), 204)
    problem(await client.delete(f"{url}/ALPHA", headers=officer), 404)
    await decisions.refresh()
    assert decisions.snapshot.people[person["id"]].programs == frozenset()
    audit = ok(
        await client.get(
            "/v1/audit", params={"entity": "person"}, headers=await ops.headers("auditor")
        )
    )["items"]
    assert [e["action"] for e in audit if e["action"].startswith("program.")] == [
        "program.read_in",
        "program.read_out",
    ]
