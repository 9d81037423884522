"""A door reader's verified token is kept in memory (to outlive a database outage), and a
revocation in this process ends it at once all the same: logout, a disabled account, a new
password or other roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.auth.token_cache import TokenCache
from tests.conftest import Operators
from tests.helpers import ok, problem
from tests.service.api.test_decisions_api import MONDAY_10AM, ask, setup_site

Revoke = Callable[[httpx.AsyncClient, dict[str, str], int, dict[str, str]], Awaitable[Any]]


async def _logout(
    client: httpx.AsyncClient, door: dict[str, str], op_id: int, admin: dict[str, str]
) -> None:
    ok(await client.post("/v1/auth/logout", headers=door), 204)


async def _patch(
    client: httpx.AsyncClient, admin: dict[str, str], op_id: int, body: dict[str, Any]
) -> None:
    current = ok(await client.get(f"/v1/operators/{op_id}", headers=admin))
    ok(
        await client.patch(
            f"/v1/operators/{op_id}",
            json=body,
            headers={**admin, "If-Match": f'"{current["version"]}"'},
        )
    )


async def _disable(
    client: httpx.AsyncClient, door: dict[str, str], op_id: int, admin: dict[str, str]
) -> None:
    await _patch(client, admin, op_id, {"disabled": True})


async def _new_password(
    client: httpx.AsyncClient, door: dict[str, str], op_id: int, admin: dict[str, str]
) -> None:
    await _patch(client, admin, op_id, {"password": "another long password"})


async def _other_roles(
    client: httpx.AsyncClient, door: dict[str, str], op_id: int, admin: dict[str, str]
) -> None:
    await _patch(client, admin, op_id, {"roles": ["door_reader", "auditor"]})


@pytest.mark.parametrize(
    "revoke", [_logout, _disable, _new_password, _other_roles], ids=lambda f: f.__name__[1:]
)
async def test_a_revoked_door_reader_token_is_refused_at_once_though_cached(
    client: httpx.AsyncClient,
    ops: Operators,
    sessions: async_sessionmaker[AsyncSession],
    revoke: Revoke,
) -> None:
    site = await setup_site(client, ops, sessions)
    cache: TokenCache = site["state"].tokens
    assert cache.recheck_seconds >= 5  # the default: a cached answer stands for seconds
    admin = await ops.headers("admin")
    op_id, door = await ops.make("door_reader", readers=[site["main"]])
    question = ask(site["main"], MONDAY_10AM, "pki_cak")
    ok(await client.post("/v1/decisions", json=question, headers=door))
    assert len(cache) == 1  # verified and kept

    await revoke(client, door, op_id, admin)
    assert len(cache) == 0
    problem(await client.post("/v1/decisions", json=question, headers=door), 401, "bad_token")


async def test_only_device_accounts_are_cached(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    cache: TokenCache = site["state"].tokens
    admin = await ops.headers("admin")
    ok(await client.post("/v1/decisions", json=ask(site["main"], MONDAY_10AM), headers=admin))
    ok(await client.get("/v1/people", headers=await ops.headers("registrar")))
    assert len(cache) == 0
