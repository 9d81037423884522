"""Panel events stored once each, in batches off the message path.

An event is unique by (panel, event id): a panel that uploads its buffer again after an
outage, or a broker that redelivers a QoS 1 message, adds nothing (INSERT … ON CONFLICT DO
NOTHING on both databases). Events wait in a bounded queue; when the database is away the
oldest are dropped first and counted — the panel still holds them and uploads again, so
nothing is lost for good while its buffer lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.base import utcnow
from accessd.models.panel_events import ALARM_TYPES, PanelEvent

log = logging.getLogger(__name__)


class PanelEventStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch: int = 2000,
        interval: float = 0.2,
        max_queue: int = 500_000,
    ) -> None:
        self._sessions = sessions
        self._batch = batch
        self._interval = interval
        self._queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.queued_total = 0
        self.stored = 0  # rows new to the database
        self.duplicates = 0  # rows it already had
        self.dropped = 0
        self.failures = 0

    def add(
        self,
        *,
        panel_id: int,
        event_id: str,
        type: str,
        at: datetime,
        seq: int | None = None,
        door_id: int | None = None,
        reader_id: int | None = None,
        data: dict[str, Any] | None = None,
        source: str = "panel",
    ) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(
            {
                "panel_id": panel_id,
                "event_id": event_id,
                "seq": seq,
                "at": at,
                "received_at": utcnow(),
                "type": type,
                "door_id": door_id,
                "reader_id": reader_id,
                "alarm": type in ALARM_TYPES,
                "data": data or {},
                "source": source,
            }
        )
        self.queued_total += 1
        if len(self._queue) >= self._batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="panel-event-store")

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
        """Stores what is queued; returns once it is in (one flush at a time)."""
        async with self._flushing:
            while self._queue:
                taken = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
                try:
                    new = await self._insert(taken)
                except Exception:
                    self.failures += 1
                    self._queue.extendleft(reversed(taken))
                    log.exception("storing %d panel events failed; will retry", len(taken))
                    return
                self.stored += new
                self.duplicates += len(taken) - new

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            stmt: Any
            if dialect == "postgresql":
                stmt = postgresql.insert(PanelEvent).on_conflict_do_nothing(
                    index_elements=["panel_id", "event_id"]
                )
            elif dialect == "sqlite":
                stmt = sqlite.insert(PanelEvent).on_conflict_do_nothing(
                    index_elements=["panel_id", "event_id"]
                )
            else:  # pragma: no cover - the two supported databases are above
                stmt = insert(PanelEvent)
            # The same event twice in one batch (a redelivery racing the upload) would
            # still conflict with itself; keep its first copy.
            unique = list({(r["panel_id"], r["event_id"]): r for r in reversed(rows)}.values())
            result = await session.execute(stmt.returning(PanelEvent.id), unique)
            new = len(result.all())
            await session.commit()
            return new
