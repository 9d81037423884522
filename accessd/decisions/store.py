"""Decision events: every decision is stored, in batches written off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db import bulk
from accessd.models import DecisionEvent
from policies.decision import AccessRequest, Decision

log = logging.getLogger(__name__)

_Item = tuple[Decision, AccessRequest, str]


class DecisionStore:
    """A bounded queue flushed every `interval` seconds or `batch` decisions. Decisions are
    queued as they are and turned into rows (their trail formatted) only when flushed. When
    the database is unreachable the oldest are dropped first, and counted."""

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
        self._queue: deque[_Item] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.stored = 0
        self.dropped = 0
        self.failures = 0

    def add(self, decision: Decision, request: AccessRequest, source: str) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((decision, request, source))
        if len(self._queue) >= self._batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="decision-store")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Stores everything queued; returns once what was queued before the call is in
        the database (a flush already under way is waited for, not overtaken: two at once
        would commit out of order and return before the other's rows are in)."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        while self._queue:
            taken = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            try:
                async with self._sessions() as session:
                    await bulk.insert_rows(session, DecisionEvent, map(_row, taken))
                    await session.commit()
            except Exception:
                # Keep them for the next try; the deque's bound drops the oldest if the
                # outage lasts.
                self.failures += 1
                self._queue.extendleft(reversed(taken))
                log.exception("storing %d decision events failed; will retry", len(taken))
                return
            self.stored += len(taken)


def _row(item: _Item) -> dict[str, Any]:
    decision, request, source = item
    return {
        "at": request.at,
        "reader_id": request.reader_id,
        "door_id": decision.door_id,
        "person_id": decision.person_id,
        "credential_id": decision.credential_id,
        "granted": decision.granted,
        "reason": decision.reason.value,
        "required": list(decision.required),
        "violation": decision.violation,
        "trail": list(decision.trail),
        "source": source,
    }
