"""accessd.db.batches.BatchWriter: what one flush takes, order, retries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.batches import BatchWriter


class Recording(BatchWriter[int]):
    """Writes nothing; records each batch. ``during_write`` runs inside the first write,
    as requests keep arriving while a real write waits for the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **kw: Any) -> None:
        super().__init__(sessions, **kw)
        self.batches: list[list[int]] = []
        self.during_write: list[int] = []
        self.fail_next = False

    def add(self, item: int) -> None:
        self._enqueue(item)

    async def write(self, session: AsyncSession, items: list[int]) -> int:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database gone")
        self.batches.append(items)
        for item in self.during_write:
            self.add(item)
        self.during_write = []
        await asyncio.sleep(0)
        return len(items)


async def test_a_flush_writes_what_was_queued_when_it_began(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Recording(sessions)
    for i in range(3):
        writer.add(i)
    writer.during_write = [3, 4]
    await writer.flush()
    # Draining until empty would have written 3 and 4 in a second, tiny transaction.
    assert writer.batches == [[0, 1, 2]]
    assert writer.queued == 2
    await writer.flush()
    assert writer.batches == [[0, 1, 2], [3, 4]]
    assert writer.stored == 5


async def test_a_large_queue_is_written_in_batches_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Recording(sessions, batch=4)
    for i in range(10):
        writer.add(i)
    await writer.flush()
    assert writer.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert writer.queued == 0


async def test_a_failed_write_keeps_its_batch_first_in_line(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Recording(sessions)
    for i in range(3):
        writer.add(i)
    writer.fail_next = True
    await writer.flush()
    assert writer.failures == 1 and writer.batches == []
    writer.add(3)
    await writer.flush()
    assert writer.batches == [[0, 1, 2, 3]]


async def test_the_background_writer_flushes_on_its_interval(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Recording(sessions, interval=0.05)
    writer.start()
    try:
        writer.add(1)
        for _ in range(200):
            if writer.batches:
                break
            await asyncio.sleep(0.01)
        assert writer.batches == [[1]]
    finally:
        await writer.stop()


async def test_the_decision_store_writes_again_after_losing_its_connection(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from accessd.decisions.store import DecisionStore
    from accessd.models import DecisionEvent
    from policies.decision import AccessRequest, Decision, Reason

    store = DecisionStore(sessions)
    request = AccessRequest(reader_id=1, at=datetime.now(UTC), id_kind="card_uuid", id_value="x")
    decision = Decision(granted=False, reason=Reason.NO_ACCESS_LEVEL, steps=(("no level {}", 1),))
    store.add(decision, request, "test")
    await store.flush()
    conn = store._conn
    if conn is not None:  # PostgreSQL: the store's own connection; kill it under the store
        conn.terminate()
    store.add(decision, request, "test")
    await store.flush()  # fails on the dead connection, keeps the batch
    await store.flush()  # a new connection writes it
    async with sessions() as s:
        count = await s.scalar(select(func.count()).select_from(DecisionEvent))
        trail = await s.scalar(select(DecisionEvent.trail).limit(1))
    assert count == 2 and store.stored == 2
    assert trail == ["no level 1"]
    await store.stop()


async def test_the_decision_store_writes_in_larger_slices_while_behind(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from accessd.decisions import store as decision_store
    from accessd.models import DecisionEvent
    from policies.decision import AccessRequest, Decision, Reason

    store = decision_store.DecisionStore(sessions, batch=500)
    request = AccessRequest(reader_id=1, at=datetime.now(UTC), id_kind="card_uuid", id_value="x")
    decision = Decision(granted=True, reason=Reason.GRANTED)
    for _ in range(10):
        store.add(decision, request, "test")
    assert store.slice() == decision_store.ROW_SLICE  # keeping up: short holds of the loop
    for _ in range(decision_store.BACKLOG):
        store.add(decision, request, "test")
    assert store.slice() == decision_store.BACKLOG_SLICE  # behind: the writer's share grows
    await store.flush()
    assert store.queued == 0 and store.slice() == decision_store.ROW_SLICE
    async with sessions() as s:
        count = await s.scalar(select(func.count()).select_from(DecisionEvent))
    assert count == store.stored == decision_store.BACKLOG + 10
    await store.stop()


async def test_a_batch_committed_but_not_acknowledged_is_not_stored_twice(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database committed the batch, then the connection dropped before the store heard
    so (or its wait timed out): the store keeps the batch and writes it again, and must
    find it there by its token instead of storing every decision twice."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from accessd.decisions.store import DecisionStore
    from accessd.models import DecisionEvent
    from policies.decision import AccessRequest, Decision, Reason

    store = DecisionStore(sessions)
    request = AccessRequest(reader_id=1, at=datetime.now(UTC), id_kind="card_uuid", id_value="x")
    for _ in range(5):
        store.add(Decision(granted=True, reason=Reason.GRANTED), request, "test")
    lose_ack = [True]
    if store._dsn is not None:  # PostgreSQL: COPY on the store's own connection
        real_copy = store._copy

        async def copy_then_drop(items: list[Any], token: str) -> None:
            await real_copy(items, token)
            if lose_ack[0]:
                raise ConnectionResetError("the acknowledgement of the commit was lost")

        monkeypatch.setattr(store, "_copy", copy_then_drop)
    else:
        real_commit = AsyncSession.commit

        async def commit_then_drop(self: AsyncSession) -> None:
            await real_commit(self)
            if lose_ack[0]:
                raise ConnectionResetError("the acknowledgement of the commit was lost")

        monkeypatch.setattr(AsyncSession, "commit", commit_then_drop)
    await store.flush()  # committed, but as far as the store knows it failed
    assert store.queued == 5 and store.stored == 0
    lose_ack[0] = False
    await store.flush()
    async with sessions() as s:
        count = await s.scalar(select(func.count()).select_from(DecisionEvent))
    assert (count, store.queued, store.recovered) == (5, 0, 5)
    await store.stop()


class Refusing(Recording):
    """Isolates: refuses (as a database refuses a value) every batch holding a poisoned
    item; ``outage_after`` writes later, every write fails as an outage does."""

    isolates = True

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **kw: Any) -> None:
        super().__init__(sessions, **kw)
        self.poison: set[int] = set()
        self.outage_after: int | None = None
        self.attempts = 0
        self.lost_items: list[int] = []

    async def write(self, session: AsyncSession, items: list[int]) -> int:
        self.attempts += 1
        if self.outage_after is not None and self.attempts > self.outage_after:
            raise ConnectionRefusedError("database gone")
        if self.poison & set(items):
            raise ValueError("refused value")
        return await super().write(session, items)

    def _rejected(self, item: int, error: Exception) -> int | None:
        # Stands in for a dead letter: the item negated (poisoned too if listed so).
        return -item

    def _lost(self, item: int, error: Exception) -> None:
        self.lost_items.append(item)


async def test_a_refused_row_is_isolated_and_replaced_and_the_rest_written_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Refusing(sessions)
    for i in range(1, 11):
        writer.add(i)
    writer.poison = {4, 9}
    await writer.flush()
    written = [i for batch in writer.batches for i in batch]
    assert written == [1, 2, 3, -4, 5, 6, 7, 8, -9, 10]
    assert writer.queued == 0 and writer.rejected == 2 and writer.lost == 0
    assert writer.stored == 10
    # Bisection, not one transaction a row: far fewer writes than rows.
    assert writer.attempts < 20, writer.attempts


async def test_a_refused_row_whose_replacement_is_refused_too_is_dropped_not_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Refusing(sessions)
    for i in range(1, 5):
        writer.add(i)
    writer.poison = {3, -3}
    await writer.flush()
    assert [i for batch in writer.batches for i in batch] == [1, 2, 4]
    assert writer.lost == 1 and writer.lost_items == [3] and writer.queued == 0
    writer.add(5)
    await writer.flush()
    assert writer.batches[-1] == [5]


async def test_an_outage_while_isolating_puts_what_is_unwritten_back_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Refusing(sessions)
    for i in range(1, 9):
        writer.add(i)
    writer.poison = {6}
    writer.outage_after = 3  # the whole batch, the first half (written), then the outage
    await writer.flush()
    assert [i for batch in writer.batches for i in batch] == [1, 2, 3, 4]
    assert list(writer._queue) == [5, 6, 7, 8]
    assert not writer.health.available
    writer.outage_after = None
    await writer.flush()
    assert [i for batch in writer.batches for i in batch] == [1, 2, 3, 4, 5, -6, 7, 8]
    assert writer.health.available


async def test_a_writer_that_does_not_isolate_retries_a_refused_batch_whole(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = Refusing(sessions)
    writer.isolates = False
    for i in range(1, 4):
        writer.add(i)
    writer.poison = {2}
    await writer.flush()
    assert writer.batches == [] and list(writer._queue) == [1, 2, 3] and writer.rejected == 0
