"""Separation of duties closes its gaps: an operator linked to a person record may not read
themselves into a program, add themselves to a group, grant themselves (or their group) an
access level, forgive their own anti-passback, or unlink their own account from their
person record; another operator may do each of these for them."""

from __future__ import annotations

import httpx

from tests.conftest import Operators
from tests.helpers import make_person, ok, problem


async def test_an_operator_cannot_grant_themselves_what_another_operator_can(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    other = await ops.headers("admin")
    me = await make_person(client, other, external_id="OP-1")
    me_id = me["id"]
    operator_id, mine = await ops.make("admin", name="self", person_id=me_id)

    group = ok(await client.post("/v1/groups", json={"name": "vault-team"}, headers=other), 201)
    level = ok(await client.post("/v1/access-levels", json={"name": "vault"}, headers=other), 201)
    attempts = [
        ("POST", f"/v1/people/{me_id}/programs", {"program": "TALENT", "reason": "need"}),
        ("PUT", f"/v1/groups/{group['id']}/members/{me_id}", None),
        ("POST", f"/v1/access-levels/{level['id']}/grants", {"person_id": me_id}),
        ("POST", f"/v1/policy/people/{me_id}/forgive", {"reason": "badge glitch"}),
    ]
    for method, url, body in attempts:
        refused = problem(
            await client.request(method, url, json=body, headers=mine), 409, "self_dealing"
        )
        assert "an operator may not" in refused["detail"]
    # Unlinking their own account from their person record, to act on their own credential.
    current = await client.get(f"/v1/operators/{operator_id}", headers=mine)
    problem(
        await client.patch(
            f"/v1/operators/{operator_id}",
            json={"person_id": None},
            headers={**mine, "If-Match": current.headers["etag"]},
        ),
        409,
        "self_dealing",
    )

    # Each is another operator's to do; then a grant to the group they are in is refused too.
    for method, url, body in attempts[:3]:
        answer = await client.request(method, url, json=body, headers=other)
        assert answer.status_code in (201, 204), answer.text
    second = ok(await client.post("/v1/access-levels", json={"name": "annex"}, headers=other), 201)
    problem(
        await client.post(
            f"/v1/access-levels/{second['id']}/grants",
            json={"group_id": group["id"]},
            headers=mine,
        ),
        409,
        "self_dealing",
    )
    ok(
        await client.post(
            f"/v1/access-levels/{second['id']}/grants",
            json={"group_id": group["id"]},
            headers=other,
        ),
        201,
    )
