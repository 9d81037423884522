"""Records written in batches off the request path: a bounded queue flushed every
`interval` seconds or every `batch` items, one flush at a time, each writing what was
queued when it began.

When the database is unreachable the batch goes back to the front of the queue for the
next try; the queue's bound then drops the oldest first, and counts them. A caller's
`flush` returns once everything queued before it is written (a flush already under way is
waited for, not overtaken: two at once would commit out of order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import deque
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.outage import DatabaseHealth, is_unavailable
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

T = TypeVar("T")


class BatchWriter(ABC, Generic[T]):
    #: What the log calls the items.
    what = "records"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch: int = 2000,
        interval: float = 0.2,
        max_queue: int = 200_000,
    ) -> None:
        self._sessions = sessions
        self._batch = batch
        self._interval = interval
        self._queue: deque[T] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._tasks: TaskSet | None = None
        self.stored = 0
        self.dropped = 0
        self.failures = 0
        #: Shared with the rest of the process when the app hands its own in.
        self.health = DatabaseHealth()

    @abstractmethod
    async def write(self, session: AsyncSession, items: list[T]) -> int:
        """Writes one batch in ``session`` (the caller commits); returns how many were new."""

    def _enqueue(self, item: T) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(item)
        if len(self._queue) >= self._batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._tasks = TaskSet(f"{self.what} writer", logger=log)
        self._tasks.spawn(self._run(), name=f"{self.what}-writer")

    async def stop(self) -> None:
        if self._tasks is not None:
            await self._tasks.close()
            self._tasks = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Writes everything queued; see the module docstring."""
        async with self._flushing:
            # Only what is queued now: what arrives during the writes waits for the next
            # flush. Draining until empty degenerated into a transaction for every two or
            # three items at a moderate rate (one write lasts as long as a few requests
            # take to come), which cost PostgreSQL and the decision path more than the
            # writes themselves (bench/decisions_mqtt.py: 948 writes for 3,000 decisions).
            left = len(self._queue)
            while left > 0 and self._queue:
                count = min(self._batch, left, len(self._queue))
                left -= count
                taken = [self._queue.popleft() for _ in range(count)]
                try:
                    new = await self._write_batch(taken)
                except Exception as exc:
                    self.failures += 1
                    self._queue.extendleft(reversed(taken))
                    if is_unavailable(exc):
                        # Said once per outage, then counted (accessd/db/outage.py).
                        self.health.failed(f"{self.what} writer", exc)
                    else:
                        log.exception("writing %d %s failed; will retry", len(taken), self.what)
                    return
                self.health.succeeded()
                self._written(len(taken), new)

    async def _write_batch(self, items: list[T]) -> int:
        """One batch in its own transaction; returns how many were new."""
        async with self._sessions() as session:
            new = await self.write(session, items)
            await session.commit()
        return new

    def _written(self, taken: int, new: int) -> None:
        self.stored += new
