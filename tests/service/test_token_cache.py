"""The door-reader token cache's bounds: a revocation written by another instance (no
forget reaches this process) takes effect here at the next audit-feed poll, and within
recheck_seconds even without it; a check that began before a forget does not put its
answer back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.auth.principals import principal
from accessd.auth.token_cache import TokenCache
from accessd.auth.tokens import digest
from accessd.db.base import utcnow
from accessd.db.outage import DatabaseHealth
from accessd.decisions.service import DecisionService
from accessd.errors import AuthenticationFailed
from accessd.events import EventBus
from accessd.models import ApiToken
from accessd.models.enums import Entity
from accessd.services import audit
from accessd.services.actors import Actor
from tests.conftest import Operators


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revocation_by_another_instance_takes_effect_within_the_recheck_time(
    sessions: async_sessionmaker[AsyncSession], ops: Operators
) -> None:
    clock = Clock()
    cache = TokenCache(10.0, clock=clock)
    health = DatabaseHealth()
    op_id, headers = await ops.make("door_reader", readers=[4])
    token = headers["Authorization"].removeprefix("Bearer ")
    async with sessions() as s:
        actor = await principal(s, token, cache, health)
    assert (actor.operator_id, actor.readers) == (op_id, frozenset({4}))

    # Another instance revokes it: a plain database write, nothing forgotten here.
    async with sessions() as s:
        await s.execute(update(ApiToken).values(revoked=True))
        await s.commit()
    clock.now += 9.5
    async with sessions() as s:
        assert await principal(s, token, cache, health) == actor  # within the bound
    clock.now += 1.0
    async with sessions() as s:
        with pytest.raises(AuthenticationFailed):
            await principal(s, token, cache, health)
    assert len(cache) == 0


async def test_a_revocation_by_another_instance_reaches_the_cache_through_the_audit_feed(
    sessions: async_sessionmaker[AsyncSession], ops: Operators
) -> None:
    service = DecisionService(sessions, EventBus(), poll_interval=3600)
    await service.start()
    try:
        cache = TokenCache(3600.0)
        health = DatabaseHealth()
        op_id, headers = await ops.make("door_reader", readers=[4])
        token = headers["Authorization"].removeprefix("Bearer ")
        async with sessions() as s:
            actor = await principal(s, token, cache, health)
        # What another instance's revoke_all writes: the rows and the audit entry, and no
        # forget that could reach this process.
        async with sessions() as s:
            await s.execute(update(ApiToken).values(revoked=True))
            await audit.record(
                s,
                actor="operator:other",
                action="token.revoke_all",
                entity=Entity.OPERATOR,
                entity_id=op_id,
                data={"tokens": 1, "why": "disabled changed"},
            )
            await s.commit()
        async with sessions() as s:
            assert await principal(s, token, cache, health) == actor  # not seen yet
        assert await service.poll_feed() >= 1
        async with sessions() as s:
            with pytest.raises(AuthenticationFailed):
                await principal(s, token, cache, health)
    finally:
        await service.stop()


def test_a_check_that_began_before_a_forget_does_not_store_its_answer() -> None:
    cache = TokenCache(10.0)
    actor = Actor(7, "door-7", frozenset({"door_reader"}), readers=frozenset({1}))
    began = cache.generation
    cache.forget(operator_id=7)  # a revocation lands while the check reads the old row
    cache.put(digest("acd_x"), actor, utcnow() + timedelta(hours=1), generation=began)
    assert len(cache) == 0
    cache.put(digest("acd_x"), actor, utcnow() + timedelta(hours=1), generation=cache.generation)
    assert len(cache) == 1


def test_a_cache_with_no_recheck_time_keeps_nothing() -> None:
    cache = TokenCache(0.0)
    actor = Actor(7, "door-7", frozenset({"door_reader"}), readers=frozenset())
    cache.put(digest("acd_x"), actor, utcnow() + timedelta(hours=1), generation=0)
    assert len(cache) == 0


def test_refused_tokens_do_not_keep_a_good_one_from_being_kept() -> None:
    cache = TokenCache(10.0)
    actor = Actor(7, "door-7", frozenset({"door_reader"}), readers=frozenset())
    began = cache.generation
    for n in range(100):
        cache.drop(digest(f"acd_guess{n}"))  # what principal() does with a refused token
    cache.put(digest("acd_x"), actor, utcnow() + timedelta(hours=1), generation=began)
    assert len(cache) == 1
