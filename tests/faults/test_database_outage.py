"""The database goes away under a running service (PostgreSQL behind a TCP proxy that the
test makes refuse, or hang): HTTP answers 503 with Retry-After and never hangs, the
health checks answer within a second and say what is down, and the log says it once,
then counts, then says it is over. Door readers on HTTP keep deciding from the snapshot,
their tokens verified before the outage (accessd/auth/token_cache.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.events import EventBus, session_info
from accessd.models import DecisionEvent
from tests.conftest import Operators, _pg_admin, _pg_url
from tests.faults.tcp_proxy import TcpProxy
from tests.helpers import ok
from tests.service.api.test_decisions_api import MONDAY_10AM, ask, setup_site
from tests.waiting import until

#: Generous bounds that only a hang would exceed: the settings below give up in seconds.
HANG_GUARD = 15.0
#: How long a verified door-reader token goes unchecked while the database is up; short,
#: so the outage meets tokens whose cached answer is due for a check.
RECHECK = 0.3


@dataclass
class Outage:
    proxy: TcpProxy
    client: httpx.AsyncClient
    direct: async_sessionmaker[AsyncSession]  # to the database itself, not through the proxy
    ops: Operators


@pytest.fixture
async def outage(templates: dict[str, str], password_hash: str) -> AsyncIterator[Outage]:
    name = f"accessd_o_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"')
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    direct_engine: AsyncEngine = make_engine(_pg_url(name))
    bus = EventBus()
    direct = make_sessionmaker(direct_engine)
    direct.configure(info=session_info(bus))
    settings = Settings(
        database_url=proxy.url(name),
        database_connect_timeout_seconds=1.0,
        database_statement_timeout_seconds=2.0,
        reader_token_recheck_seconds=RECHECK,
        # The door policy with a reader's claims; card proofs are not what this is about.
        require_card_proofs=False,
    )
    app = create_app(settings, bus=bus)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://accessd.test"
            ) as client,
        ):
            yield Outage(proxy, client, direct, Operators(direct, password_hash))
            await proxy.restore()  # let the app stop cleanly, flushing what it holds
    finally:
        await proxy.close()
        await direct_engine.dispose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bounded(request: Any) -> httpx.Response:
    async with asyncio.timeout(HANG_GUARD):
        response: httpx.Response = await request
        return response


async def verified(
    client: httpx.AsyncClient, question: dict[str, Any], headers: dict[str, str]
) -> None:
    """Asks as a door reader so that its token stays cached: the audit feed forgets an
    operator's cached tokens when it reads their login's entry, so the feed reads the
    logins first, and a second answer puts back what a poll in flight may still drop."""
    state = client._transport.app.state.accessd  # type: ignore[attr-defined]
    await state.decisions.poll_feed()
    assert ok(await client.post("/v1/decisions", json=question, headers=headers))["granted"]
    await asyncio.sleep(0.3)
    assert ok(await client.post("/v1/decisions", json=question, headers=headers))["granted"]


def unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "database_unavailable"


async def stored_decisions(direct: async_sessionmaker[AsyncSession]) -> int:
    async with direct() as s:
        return int(await s.scalar(select(func.count()).select_from(DecisionEvent)) or 0)


@pytest.mark.parametrize("fault", ["refuse", "hang"])
async def test_a_database_outage_is_503_and_one_log_line_and_doors_keep_deciding(
    outage: Outage, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = outage.client
    site = await setup_site(client, outage.ops, outage.direct)
    admin = await outage.ops.headers("admin")
    reader = await outage.ops.headers("door_reader", readers=[site["main"]])
    question = ask(site["main"], MONDAY_10AM, "pki_cak")
    assert ok(await client.get("/v1/people", headers=admin))["items"]
    await verified(client, question, reader)
    await site["state"].decisions.store.flush()
    before = await stored_decisions(outage.direct)

    with caplog.at_level(logging.WARNING):
        if fault == "refuse":
            await outage.proxy.refuse()
        else:
            outage.proxy.hang()
        for _ in range(3):
            unavailable(await bounded(client.get("/v1/people", headers=admin)))
        health = await bounded(client.get("/healthz"))
        assert health.status_code == 503 and health.json()["database"] == "unreachable"
        ready = await bounded(client.get("/readyz"))
        assert ready.status_code == 503, ready.text
        parts = ready.json()["parts"]
        assert parts["database"]["state"] == "unreachable"
        assert parts["database"]["failures"] >= 4
        assert parts["decision_writer"]["state"] == "holding"
        # A reader asking over HTTP is decided from the snapshot, as MQTT panels are: its
        # token was verified before the outage.
        during = await bounded(client.post("/v1/decisions", json=question, headers=reader))
        assert ok(during)["granted"]

        await outage.proxy.restore()
        ok(await bounded(client.get("/v1/people", headers=admin)))
        await until(lambda: site["state"].db_health.available, what="the outage noticed to be over")

    said = [r.getMessage() for r in caplog.records if r.name == "accessd.db.outage"]
    assert len([m for m in said if m.startswith("database unavailable")]) == 1, said
    assert len([m for m in said if m.startswith("database back after")]) == 1, said
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
    # Back: decided and stored as before, the one made during the outage too.
    assert ok(await client.post("/v1/decisions", json=question, headers=reader))["granted"]
    await site["state"].decisions.store.flush()
    assert await stored_decisions(outage.direct) == before + 2


@pytest.mark.parametrize("fault", ["refuse", "hang"])
async def test_a_door_reader_keeps_getting_http_decisions_through_a_database_outage(
    outage: Outage, fault: str
) -> None:
    client = outage.client
    site = await setup_site(client, outage.ops, outage.direct)
    state = site["state"]
    reader = await outage.ops.headers("door_reader", readers=[site["main"]])
    never_used = await outage.ops.headers("door_reader", readers=[site["main"]])
    question = ask(site["main"], MONDAY_10AM, "pki_cak")
    await verified(client, question, reader)
    await state.decisions.store.flush()
    before = await stored_decisions(outage.direct)
    await asyncio.sleep(RECHECK * 2)  # the cached answer is due for a check now

    if fault == "refuse":
        await outage.proxy.refuse()
    else:
        outage.proxy.hang()
    # The first request to meet the outage is the reader's: its check fails, the last
    # verified answer stands, and the outage is noted for everyone else.
    first = await bounded(client.post("/v1/decisions", json=question, headers=reader))
    assert ok(first)["granted"]
    assert not state.db_health.available
    for _ in range(3):
        answer = await bounded(client.post("/v1/decisions", json=question, headers=reader))
        assert ok(answer)["granted"] and answer.json()["person_id"] is None
    # A token nobody verified before cannot be vouched for: that reader is told to retry.
    unavailable(await bounded(client.post("/v1/decisions", json=question, headers=never_used)))

    await outage.proxy.restore()
    await until(lambda: state.db_health.available, what="the outage noticed to be over")
    await state.decisions.store.flush()
    assert await stored_decisions(outage.direct) == before + 4
