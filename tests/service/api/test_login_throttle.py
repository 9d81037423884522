"""Login throttling (accessd/auth/throttle.py): an account or an address that keeps failing
is held back before any password is checked, every failed login is audited, and another
client's good login goes through meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.api.app import create_app
from accessd.auth.throttle import LoginThrottle, Rule
from accessd.config import Settings
from accessd.events import EventBus
from accessd.models import AuditEntry
from tests.conftest import PASSWORD, Operators
from tests.helpers import ok, problem


def test_the_free_failures_then_a_doubling_lock_then_a_success_clears_the_account() -> None:
    now = [0.0]
    throttle = LoginThrottle(
        account=Rule(free=3, window=60), address=Rule(free=100, window=60), clock=lambda: now[0]
    )
    for _ in range(3):
        assert throttle.wait("pat", "10.0.0.1") == 0
        assert not throttle.failed("pat", "10.0.0.1")
    assert throttle.failed("pat", "10.0.0.1")  # the fourth: locked 1 s
    assert throttle.wait("pat", "10.0.0.9") == 1.0  # whatever the address
    assert throttle.wait("PAT", "10.0.0.9") == 1.0  # usernames are matched without case
    now[0] += 1.0
    throttle.failed("pat", "10.0.0.1")  # the fifth: 2 s
    assert throttle.wait("pat", "10.0.0.1") == 2.0
    now[0] += 2.0
    throttle.succeeded("pat", "10.0.0.1")
    assert throttle.wait("pat", "10.0.0.1") == 0
    now[0] += 61.0  # failures age out of the window
    assert not throttle.failed("pat", "10.0.0.1")
    assert throttle.refused == 3


def test_a_burst_in_flight_gets_no_more_checks_than_the_free_ones() -> None:
    throttle = LoginThrottle(
        account=Rule(free=3, window=60), address=Rule(free=100, window=60), clock=lambda: 0.0
    )
    begun = [throttle.begin("pat", "10.0.0.1") for _ in range(10)]
    assert begun == [0, 0, 0] + [1.0] * 7  # three checks run; the other seven wait
    throttle.abandon("pat", "10.0.0.1")  # one ended in an error, neither way
    assert throttle.begin("pat", "10.0.0.1") == 0


class Site:
    def __init__(self, app: object, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.app = app
        self.sessions = sessions

    def client(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://accessd.test")


@pytest.fixture
async def site(
    settings: Settings,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Site]:
    app = create_app(settings, engine=engine, bus=bus)
    async with app.router.lifespan_context(app):
        yield Site(app, sessions)


async def failed_logins(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, object]]:
    async with sessions() as s:
        rows = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed"))
        ).all()
    return [dict(r.data) for r in rows]


async def test_an_account_that_keeps_failing_is_held_back_and_each_failure_audited(
    site: Site, ops: Operators
) -> None:
    await ops.make("admin", name="pat")
    async with site.client("10.0.0.1") as guesser:
        for n in range(5):
            problem(
                await guesser.post("/v1/auth/token", json={"username": "pat", "password": f"x{n}"}),
                401,
                "bad_credentials",
            )
        problem(
            await guesser.post("/v1/auth/token", json={"username": "pat", "password": "x5"}),
            401,
            "bad_credentials",
        )  # the sixth is checked, and locks the account
        held = await guesser.post("/v1/auth/token", json={"username": "pat", "password": PASSWORD})
        problem(held, 429, "too_many_attempts")
        assert int(held.headers["retry-after"]) >= 1
    # Held back from everywhere: the lock is the account's.
    async with site.client("10.0.0.2") as other:
        right = {"username": "pat", "password": PASSWORD}
        problem(await other.post("/v1/auth/token", json=right), 429, "too_many_attempts")
    said = await failed_logins(site.sessions)
    assert len(said) == 6  # every password checked and wrong; the held ones were not checked
    assert said[-1] == {"username": "pat", "address": "10.0.0.1", "locked": True}
    assert all("password" not in d for d in said)


async def test_a_spraying_address_is_held_back_while_another_clients_login_goes_through(
    site: Site, ops: Operators
) -> None:
    await ops.make("admin", name="lee")
    async with site.client("10.6.6.6") as sprayer:
        for n in range(20):
            body = {"username": f"user{n}", "password": "Winter2026!"}
            problem(await sprayer.post("/v1/auth/token", json=body), 401, "bad_credentials")
        problem(await sprayer.post("/v1/auth/token", json=body), 401, "bad_credentials")
        right = {"username": "lee", "password": PASSWORD}
        problem(await sprayer.post("/v1/auth/token", json=right), 429, "too_many_attempts")
    async with site.client("10.0.0.7") as colleague:
        token = ok(await colleague.post("/v1/auth/token", json=right))
        assert token["access_token"].startswith("acd_")
    said = await failed_logins(site.sessions)
    assert len(said) == 21 and {d["username"] for d in said} == {f"user{n}" for n in range(20)}


def test_a_login_makes_its_account_and_address_known_for_a_month() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    assert not throttle.known("pat", "10.0.0.1")
    assert throttle.begin("pat", "10.0.0.1") == 0
    throttle.succeeded("pat", "10.0.0.1")
    assert throttle.known("PAT", "10.0.0.1") and not throttle.known("pat", "10.0.0.2")
    now[0] += 31 * 24 * 3600.0
    assert not throttle.known("pat", "10.0.0.1")
