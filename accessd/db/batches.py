"""Records written in batches off the request path: a bounded queue flushed every
`interval` seconds or every `batch` items, one flush at a time, each writing what was
queued when it began.

When the database is unreachable the batch goes back to the front of the queue for the
next try; the queue's bound then drops the oldest first, and counts them (a subclass hears
of each in `_dropped`). A caller's `flush` returns once everything queued before it is
written (a flush already under way is waited for, not overtaken: two at once would commit
out of order). `_committed` hears of every batch once its transaction has committed, and
only then: what it confirms to others is in the database. `stop` makes a last flush
within a bound and leaves what it could not write unconfirmed.
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
    #: Seconds the last flush at `stop` may take; None: as long as it takes.
    stop_timeout: float | None = None

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
        # Bounded by hand, not by maxlen: a deque at its maxlen drops silently, from the
        # right end when a failed batch is put back at the left.
        self._queue: deque[T] = deque()
        self._max_queue = max_queue
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
        self._queue.append(item)
        self._bound()
        if len(self._queue) >= self._batch:
            self._wake.set()

    def _bound(self) -> None:
        while len(self._queue) > self._max_queue:
            self.dropped += 1
            self._dropped(self._queue.popleft())

    def _dropped(self, item: T) -> None:
        """``item`` was dropped unwritten (the queue was full)."""

    def _committed(self, items: list[T]) -> None:
        """``items`` are in the database (written now, or there already)."""

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._tasks = TaskSet(f"{self.what} writer", logger=log)
        self._tasks.spawn(self._run(), name=f"{self.what}-writer")

    async def stop(self) -> None:
        """Stops the writer after a last flush, given at most ``stop_timeout`` seconds (a
        database that hangs must not hold up a shutdown); what is left is logged."""
        if self._tasks is not None:
            await self._tasks.close()
            self._tasks = None
        try:
            async with asyncio.timeout(self.stop_timeout):
                await self.flush()
        except TimeoutError:
            log.warning("the last flush of %s gave up after %s s", self.what, self.stop_timeout)
        if self._queue:
            log.warning("%d %s not written at shutdown", len(self._queue), self.what)

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
                started = self.health.now()
                try:
                    new = await self._write_batch(taken)
                except BaseException as exc:
                    # Back at the front, whatever stopped the write: a flush cancelled by
                    # stop()'s bound leaves its batch queued (and counted as not written).
                    self._queue.extendleft(reversed(taken))
                    self._bound()
                    if not isinstance(exc, Exception):
                        raise
                    self.failures += 1
                    if is_unavailable(exc):
                        # Said once per outage, then counted (accessd/db/outage.py).
                        self.health.failed(f"{self.what} writer", exc)
                    else:
                        log.exception("writing %d %s failed; will retry", len(taken), self.what)
                    return
                self.health.succeeded(started)
                self._written(len(taken), new)
                self._committed(taken)

    async def _write_batch(self, items: list[T]) -> int:
        """One batch in its own transaction; returns how many were new."""
        async with self._sessions() as session:
            new = await self.write(session, items)
            await session.commit()
        return new

    def _written(self, taken: int, new: int) -> None:
        self.stored += new
