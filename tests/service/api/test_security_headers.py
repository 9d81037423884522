"""Security headers on every answer; no cache keeps a bearer token (accessd/api/headers.py)."""

from __future__ import annotations

import httpx

from tests.conftest import PASSWORD, Operators
from tests.helpers import ok

SECURE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def secured(response: httpx.Response) -> None:
    for name, value in SECURE.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    admin = await ops.headers("admin")
    secured(await client.get("/v1/people", headers=admin))
    secured(await client.get("/v1/people"))  # a 401 problem too
    secured(await client.get("/healthz"))
    secured(await client.get("/docs"))
    secured(await client.post("/v1/people", content=b"x" * (2 << 20), headers=admin))  # 413


async def test_token_answers_are_never_cached(client: httpx.AsyncClient, ops: Operators) -> None:
    await ops.make("registrar", name="casey")
    login = await client.post("/v1/auth/token", json={"username": "casey", "password": PASSWORD})
    token = ok(login)["access_token"]
    assert login.headers["cache-control"] == "no-store"
    me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.headers["cache-control"] == "no-store"
    assert "no-store" not in (await client.get("/healthz")).headers.get("cache-control", "")
