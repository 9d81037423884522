"""Staged events follow their transaction: published on commit, dropped on rollback, and a
rolled-back savepoint drops only what was staged inside it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.events import PersonChanged, stage
from tests.conftest import Recorder


async def test_commit_publishes_rollback_drops(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    async with sessions() as s:
        await s.connection()  # use cases stage events inside a transaction
        stage(s, PersonChanged(1, ("a",)))
        await s.rollback()
        assert events.events == []
        await s.connection()
        stage(s, PersonChanged(2, ("b",)))
        await s.commit()
    assert [e.person_id for e in events.of(PersonChanged)] == [2]


async def test_a_rolled_back_savepoint_drops_only_its_own_events(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    async with sessions() as s:
        await s.connection()
        stage(s, PersonChanged(1, ("before",)))
        savepoint = await s.begin_nested()
        stage(s, PersonChanged(2, ("inside",)))
        await savepoint.rollback()
        kept = await s.begin_nested()
        stage(s, PersonChanged(3, ("kept savepoint",)))
        await kept.commit()
        stage(s, PersonChanged(4, ("after",)))
        await s.commit()
    assert [e.person_id for e in events.of(PersonChanged)] == [1, 3, 4]
