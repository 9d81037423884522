"""The service answers on both databases: health, login, one person."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.api.app import create_app
from accessd.config import Settings
from tests.conftest import PASSWORD, Operators
from tests.helpers import make_person, ok, problem


async def test_healthz_reports_database_ok(client: httpx.AsyncClient) -> None:
    body = ok(await client.get("/healthz"))
    assert body["status"] == "ok" and body["database"] == "ok"


async def test_login_issues_token_that_authenticates(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    await ops.make("sponsor", name="alice")
    token = ok(
        await client.post("/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    )
    me = ok(
        await client.get(
            "/v1/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
    )
    assert me["username"] == "alice" and me["roles"] == ["sponsor"]


async def test_wrong_password_is_401(client: httpx.AsyncClient, ops: Operators) -> None:
    await ops.make("sponsor", name="bob")
    r = await client.post("/v1/auth/token", json={"username": "bob", "password": "wrong password!"})
    problem(r, 401, "bad_credentials")


async def test_logout_revokes_the_token(client: httpx.AsyncClient, ops: Operators) -> None:
    headers = await ops.headers("sponsor")
    ok(await client.post("/v1/auth/logout", headers=headers), 204)
    problem(await client.get("/v1/auth/me", headers=headers), 401, "bad_token")


async def test_person_round_trip(client: httpx.AsyncClient, ops: Operators) -> None:
    headers = await ops.headers("sponsor")
    created = await make_person(client, headers, external_id="E-1")
    got = await client.get(f"/v1/people/{created['id']}", headers=headers)
    assert ok(got)["external_id"] == "E-1"
    assert got.headers["etag"] == '"1"'


async def test_metrics_open_without_a_token_only_when_configured(
    settings: Settings, engine: AsyncEngine
) -> None:
    for public, status in ((False, 401), (True, 200)):
        app = create_app(settings.model_copy(update={"metrics_public": public}), engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://accessd.test") as c,
        ):
            assert (await c.get("/metrics")).status_code == status
