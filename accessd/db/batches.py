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

A batch that fails for any other reason than an outage (a value the database refuses)
would fail again on every retry and hold up everything queued behind it. A writer that
sets `isolates` then writes the batch in halves, each in its own transaction, down to the
single rows that fail: each goes to `_rejected`, which may hand back a replacement to write
instead (a dead letter), and the rest is written as usual. An outage met on the way puts
what is not written yet back at the front, as above.
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
    #: Whether a batch refused for a data reason is halved until its bad rows are found
    #: (see the module); False: it is retried whole, as an outage is.
    isolates = False
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
        #: Whether the last write failed for another reason than the database being away
        #: (a refused batch this writer retries whole): /readyz says so.
        self.failing = False
        #: Rows that failed alone for a data reason (`isolates`), and of them those whose
        #: replacement failed too or that had none: lost.
        self.rejected = 0
        self.lost = 0
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

    def _rejected(self, item: T, error: Exception) -> T | None:
        """``item`` failed alone for a data reason (`isolates`); returns what to write in its
        stead, or None to drop it (counted in `lost`)."""
        return None

    def _lost(self, item: T, error: Exception) -> None:
        """``item`` is dropped: it failed alone and so did its replacement, or it had none."""

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
                    refused = (
                        self.isolates and isinstance(exc, Exception) and not is_unavailable(exc)
                    )
                    if not refused:
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
                        return
                    if not refused:
                        self.failing = True
                        log.exception("writing %d %s failed; will retry", len(taken), self.what)
                        return
                    log.warning(
                        "writing %d %s failed (%s); finding the rows the database refuses",
                        len(taken),
                        self.what,
                        _kind(exc),
                    )
                    if not await self._isolate(taken):
                        return
                    continue
                self.health.succeeded(started)
                self.failing = False
                self._written(len(taken), new)
                self._committed(taken)

    async def _isolate(self, items: list[T]) -> bool:
        """Writes ``items``, whose batch failed for a data reason, in halves down to the rows
        that fail alone; False when an outage stopped it (the rest is queued again)."""
        # (rows, the row they replace): a replacement is one row, and when it fails too
        # it is not replaced again; the row it stands for is given up.
        parts: list[tuple[list[T], list[T]]] = [(items, [])]
        while parts:
            part, replaces = parts.pop()
            started = self.health.now()
            try:
                new = await self._write_batch(part)
            except BaseException as exc:
                if not isinstance(exc, Exception) or is_unavailable(exc):
                    rest = part + [item for later, _ in reversed(parts) for item in later]
                    self._queue.extendleft(reversed(rest))
                    self._bound()
                    if not isinstance(exc, Exception):
                        raise
                    self.failures += 1
                    self.health.failed(f"{self.what} writer", exc)
                    return False
                if len(part) > 1:
                    middle = len(part) // 2
                    parts += [(part[middle:], []), (part[:middle], [])]
                elif replaces:
                    self._give_up(replaces[0], exc)
                else:
                    self.rejected += 1
                    instead = self._rejected(part[0], exc)
                    if instead is None:
                        self._give_up(part[0], exc)
                    else:
                        parts.append(([instead], part))
                continue
            self.health.succeeded(started)
            self._written(len(part), new)
            self._committed(part)
        return True

    def _give_up(self, item: T, error: Exception) -> None:
        self.lost += 1
        log.error("a row of %s the database refused is dropped (%s)", self.what, _kind(error))
        self._lost(item, error)

    async def _write_batch(self, items: list[T]) -> int:
        """One batch in its own transaction; returns how many were new."""
        async with self._sessions() as session:
            new = await self.write(session, items)
            await session.commit()
        return new

    def _written(self, taken: int, new: int) -> None:
        self.stored += new


def _kind(error: BaseException) -> str:
    """The name of what refused a write, without its message (which may quote the row)."""
    orig = getattr(error, "orig", None)
    return type(orig if isinstance(orig, BaseException) else error).__name__
