"""Presence is shared through the database, on both: an entry decided by one instance
holds at another (hard anti-passback refuses the second entry there), survives a restart,
and an operator's forgiveness at one instance reaches the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.decisions.service import DecisionService
from accessd.events import EventBus
from accessd.models import Area, PresenceChange
from policies.decision import Reason
from tests.service.test_decision_service import badge, make_site, operators_for_setup
from tests.waiting import until

__all__ = ["operators_for_setup"]  # a fixture these tests use


@pytest.fixture
async def site(
    sessions: async_sessionmaker[AsyncSession], operators_for_setup: None
) -> dict[str, int]:
    ids = await make_site(sessions)
    async with sessions() as s:
        await s.execute(update(Area).values(anti_passback="hard"))
        await s.commit()
    return ids


@pytest.fixture
async def instances(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[list[DecisionService]]:
    """Two decision services on one database, as two accessd instances run them."""
    made = [DecisionService(sessions, EventBus(), poll_interval=3600) for _ in range(2)]
    for service in made:
        await service.start()
    yield made
    for service in made:
        await service.stop()


async def test_an_entry_at_one_instance_holds_at_the_other(
    site: dict[str, int], instances: list[DecisionService]
) -> None:
    a, b = instances
    now = datetime.now(UTC)
    assert a.decide(badge(site, now)).granted
    await until(lambda: site["person"] in b.presence.location, what="b hears of the entry")
    second = b.decide(badge(site, now + timedelta(seconds=5)))
    assert second.reason is Reason.ANTI_PASSBACK, second


async def test_presence_survives_a_restart(
    site: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = DecisionService(sessions, EventBus(), poll_interval=3600)
    await first.start()
    now = datetime.now(UTC)
    assert first.decide(badge(site, now)).granted
    await first.stop()  # its last flush writes the change
    restarted = DecisionService(sessions, EventBus(), poll_interval=3600)
    await restarted.start()
    try:
        again = restarted.decide(badge(site, now + timedelta(seconds=5)))
        assert again.reason is Reason.ANTI_PASSBACK, again
    finally:
        await restarted.stop()


async def test_forgiveness_reaches_every_instance(
    site: dict[str, int],
    instances: list[DecisionService],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b = instances
    now = datetime.now(UTC)
    assert a.decide(badge(site, now)).granted
    await until(lambda: site["person"] in b.presence.location, what="b hears of the entry")
    b.forgive(site["person"], now + timedelta(seconds=1))
    await until(lambda: site["person"] not in a.presence.location, what="a forgives too")
    assert a.decide(badge(site, now + timedelta(seconds=2))).granted
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(PresenceChange)) >= 2
