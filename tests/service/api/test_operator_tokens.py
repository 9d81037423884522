"""A token carries the terms it was issued under: setting a password, changing roles or
disabling the account revokes every token of that operator (before, a token survived a
password reset)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Operators
from tests.helpers import ok, problem

NEW_PASSWORD = "a new and longer passphrase"


async def patch(
    client: httpx.AsyncClient, headers: dict[str, str], operator_id: int, body: dict[str, object]
) -> None:
    current = await client.get(f"/v1/operators/{operator_id}", headers=headers)
    etag = current.headers["etag"]
    ok(
        await client.patch(
            f"/v1/operators/{operator_id}", json=body, headers={**headers, "If-Match": etag}
        )
    )


@pytest.mark.parametrize(
    "change",
    [{"password": NEW_PASSWORD}, {"roles": ["auditor"]}, {"disabled": True}],
    ids=["password reset", "roles changed", "disabled"],
)
async def test_an_operators_tokens_end_when_their_terms_change(
    client: httpx.AsyncClient, ops: Operators, change: dict[str, object]
) -> None:
    admin = await ops.headers("admin")
    target, first = await ops.make("registrar", name="rory")
    second = ok(
        await client.post(
            "/v1/auth/token", json={"username": "rory", "password": "correct horse battery staple"}
        )
    )
    tokens = [first, {"Authorization": f"Bearer {second['access_token']}"}]
    for headers in tokens:
        ok(await client.get("/v1/auth/me", headers=headers))
    await patch(client, admin, target, change)
    for headers in tokens:
        problem(await client.get("/v1/auth/me", headers=headers), 401)
    if "password" in change:
        fresh = ok(
            await client.post("/v1/auth/token", json={"username": "rory", "password": NEW_PASSWORD})
        )
        ok(
            await client.get(
                "/v1/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
            )
        )
    # The revocation is in the audit trail, with why.
    trail = ok(await client.get("/v1/audit", params={"entity_id": str(target)}, headers=admin))
    revoked = [e for e in trail["items"] if e["action"] == "token.revoke_all"]
    assert len(revoked) == 1 and revoked[0]["data"]["tokens"] == 2


async def test_a_display_name_change_leaves_the_tokens_alone(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    admin = await ops.headers("admin")
    target, token = await ops.make("registrar", name="sam")
    await patch(client, admin, target, {"display_name": "Sam S."})
    ok(await client.get("/v1/auth/me", headers=token))


async def test_changing_ones_own_password_ends_ones_own_sessions_too(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    me, token = await ops.make("admin", name="ash")
    await patch(client, token, me, {"password": NEW_PASSWORD})
    problem(await client.get("/v1/auth/me", headers=token), 401)
