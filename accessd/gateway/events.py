"""Panel events stored once each, in batches off the message path.

An event is unique by (panel, event id): a panel that uploads its buffer again after an
outage, or a broker that redelivers a QoS 1 message, adds nothing (INSERT … ON CONFLICT DO
NOTHING on both databases). Events wait in a bounded queue; when the database is away the
oldest are dropped first and counted — the panel still holds them and uploads again, so
nothing is lost for good while its buffer lasts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.base import utcnow
from accessd.db.batches import BatchWriter
from accessd.models.panel_events import ALARM_TYPES, PanelEvent


class PanelEventStore(BatchWriter[dict[str, Any]]):
    what = "panel events"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **kwargs: Any) -> None:
        kwargs.setdefault("max_queue", 500_000)
        super().__init__(sessions, **kwargs)
        self.queued_total = 0
        self.duplicates = 0  # rows the database already had

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
        self._enqueue(
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

    def _written(self, taken: int, new: int) -> None:
        self.stored += new
        self.duplicates += taken - new

    async def write(self, session: AsyncSession, items: list[dict[str, Any]]) -> int:
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
        # The same event twice in one batch (a redelivery racing the upload) would still
        # conflict with itself; keep its first copy.
        unique = list({(r["panel_id"], r["event_id"]): r for r in reversed(items)}.values())
        result = await session.execute(stmt.returning(PanelEvent.id), unique)
        return len(result.all())
