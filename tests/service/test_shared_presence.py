"""Presence is shared through the database, on both: an entry decided by one instance
holds at another (hard anti-passback refuses the second entry there), survives a restart,
and an operator's forgiveness at one instance reaches the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.decisions.presence import PresenceStore
from accessd.decisions.service import DecisionService
from accessd.events import EventBus
from accessd.models import Area, PresenceChange
from policies.contention import Contended
from policies.decision import AccessRequest, Decision, Reason
from policies.presence import Change, Presence
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


async def _rounds(
    site: dict[str, int],
    instances: list[DecisionService],
    decide: Callable[[DecisionService, AccessRequest], Awaitable[Decision]],
    rounds: int,
    at: datetime,
) -> list[int]:
    """The same badge at the same moment at both instances, ``rounds`` times (forgiven in
    between, at both): how many of each round's two decisions granted."""
    a = instances[0]
    granted: list[int] = []
    for n in range(rounds):
        at += timedelta(seconds=10)
        both = await asyncio.gather(*(decide(i, badge(site, at)) for i in instances))
        granted.append(sum(d.granted for d in both))
        a.forgive(site["person"], at + timedelta(seconds=1))
        await until(
            lambda: all(site["person"] not in i.presence.location for i in instances),
            what=f"round {n}: both forgive",
        )
    return granted


async def test_the_same_badge_at_two_instances_at_once_is_granted_once(
    backend: str, site: dict[str, int], instances: list[DecisionService]
) -> None:
    """Hard anti-passback across instances: decided in turns, exactly one of two
    simultaneous entries of one badge is granted, every time; decided alone from each
    instance's own presence (the control), both are: the race the turns close."""
    if backend != "postgresql":
        pytest.skip("one process per SQLite database: there are no other instances")

    for i in instances:
        # What is tested is the turn-taking, not its bound: a loaded test machine may take
        # longer than a door's wait for a turn.
        i.turns.wait = 5.0

    async def alone(i: DecisionService, r: AccessRequest) -> Decision:
        return i.decide(r)

    async def in_turn(i: DecisionService, r: AccessRequest) -> Decision:
        return await i.decide_in_turn(r)

    now = datetime.now(UTC)
    assert await _rounds(site, instances, alone, 3, now) == [2, 2, 2]
    assert await _rounds(site, instances, in_turn, 20, now + timedelta(minutes=1)) == [1] * 20
    assert sum(i.turns.taken for i in instances) == 40
    assert sum(i.turns.missed for i in instances) == 0


async def test_a_turn_not_had_in_time_decides_alone_and_is_counted(
    backend: str,
    site: dict[str, int],
    instances: list[DecisionService],
    engine: AsyncEngine,
) -> None:
    """A turn held elsewhere past the wait (another instance stuck mid-turn) costs the
    door nothing: the decision is made from this instance's presence, counted as missed."""
    if backend != "postgresql":
        pytest.skip("turns are PostgreSQL advisory locks")
    a, _ = instances
    keys = ((Contended.PERSON, site["person"]),)
    async with a.turns.turn(keys):  # held by "another instance" for the whole decision
        started = asyncio.get_running_loop().time()
        d = await instances[1].decide_in_turn(badge(site, datetime.now(UTC)))
        waited = asyncio.get_running_loop().time() - started
    assert d.granted, d.trail
    assert instances[1].turns.missed == 1 and instances[1].turns.taken == 0
    assert waited < 1.0, waited


async def test_a_poll_reads_only_the_other_instances_rows_and_settles_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What a poll costs does not grow with this instance's own decisions (each of which it
    applied when it made it), and rows older than the settle window are not read again."""
    a = PresenceStore(sessions, Presence(), settle=timedelta(seconds=0.2))
    b = PresenceStore(sessions, Presence(), settle=timedelta(seconds=0.2))
    now = datetime.now(UTC)
    changes = [
        Change(at=now, person_id=n, door_id=1, area_id=1, granted=True) for n in range(1, 301)
    ]
    async with sessions() as s:
        await a.write(s, changes)
        await s.commit()
    assert await a.poll() == 0 and a.read == 0
    assert await b.poll() == 300 and b.read == 300
    assert set(b.presence.location) == set(range(1, 301))
    await asyncio.sleep(0.3)
    await b.poll()  # past the settle window: the floor rises past every row
    await b.poll()
    before = b.read
    assert await b.poll() == 0 and b.read == before


async def test_presence_changes_nobody_replays_are_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The presence log does not grow without end: rows older than twice the replay horizon
    go, in slices; recent ones stay."""
    store = PresenceStore(sessions, Presence(), horizon=timedelta(hours=1))
    now = datetime.now(UTC)
    old = [Change(at=now - timedelta(hours=3), person_id=n, door_id=1) for n in range(1, 26)]
    recent = [Change(at=now - timedelta(minutes=90), person_id=n, door_id=1) for n in (1, 2)]
    async with sessions() as s:
        await store.write(s, [*old, *recent])
        await s.commit()
    assert await store.compact(now, limit=10) == 10
    assert await store.compact(now, limit=10) == 10
    assert await store.compact(now, limit=10) == 5
    assert await store.compact(now, limit=10) == 0
    async with sessions() as s:
        left = (await s.scalars(select(PresenceChange.person_id))).all()
    assert sorted(left) == [1, 2]
