"""Presence shared through the database: every instance's decisions write their
`policies.presence.Change`s through, and every instance applies the others' to its own
in-memory `Presence`, which decisions keep reading without a database round trip.

A starting instance replays the changes of the last `horizon` (where people are survives a
restart). Between instances a change arrives within one write interval and one poll; two
instances deciding the same person within that gap each decide from what they know (the
race is bounded by that gap, and each outcome is stored, so the log shows it).

Ids are handed out before commit, so a row with a lower id can commit after one with a
higher id that was already read: the poll re-reads the last `settle` seconds of rows and
skips those applied, rather than trusting the highest id seen.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db import bulk
from accessd.db.batches import BatchWriter
from accessd.models import PresenceChange
from policies.decision import Reason
from policies.presence import Change, Presence

log = logging.getLogger(__name__)

#: How far back a starting instance replays: waits and first-person-in last a day at most,
#: and anti-passback forgets a location older than its reset anyway.
HORIZON = timedelta(hours=24)
#: Rows this recent are read again at each poll (a transaction that took an id earlier may
#: commit later); generous against a slow commit, cheap as rows are few.
SETTLE = timedelta(seconds=30)


class PresenceStore(BatchWriter[Change]):
    """Writes this instance's changes in batches, and reads the others' into ``presence``."""

    what = "presence changes"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        presence: Presence,
        *,
        horizon: timedelta = HORIZON,
        settle: timedelta = SETTLE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("interval", 0.05)  # other instances wait for these rows
        super().__init__(sessions, **kwargs)
        self.presence = presence
        self.instance = uuid.uuid4().hex
        self._horizon = horizon
        self._settle = settle
        #: Rows below this id are all applied; ids at or above it that are, in `_seen`.
        self._floor = 0
        self._seen: dict[int, datetime] = {}
        self.applied = 0

    def add(self, change: Change) -> None:
        self._enqueue(change)

    async def write(self, session: AsyncSession, items: list[Change]) -> int:
        await bulk.insert_rows(session, PresenceChange, (self._row(c) for c in items))
        return len(items)

    def _row(self, c: Change) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "at": c.at,
            "written_at": datetime.now(UTC),
            "person_id": c.person_id,
            "door_id": c.door_id,
            "area_id": c.area_id,
            "reason": c.reason.value,
            "granted": c.granted,
            "companions": list(c.companions),
            "may_escort": c.may_escort,
            "starts_free_access": c.starts_free_access,
            "local_day": c.local_day,
            "forgiven": c.forgiven,
        }

    async def load(self, now: datetime) -> int:
        """Replays every instance's changes of the last `horizon` (at start)."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(PresenceChange)
                    .where(PresenceChange.at >= now - self._horizon)
                    .order_by(PresenceChange.id)
                )
            ).all()
            if rows:
                self._floor = max(self._floor, rows[0].id)
            else:  # nothing recent: older rows are never read
                top = await session.scalar(select(func.max(PresenceChange.id)))
                self._floor = max(self._floor, int(top or 0) + 1)
        self._apply(rows, mine_too=True)
        return len(rows)

    async def poll(self, session: AsyncSession | None = None) -> int:
        """Applies the changes other instances wrote since the last poll; returns how many.
        ``session``: read in that one (a turn's transaction, accessd.decisions.turns)."""
        if session is None:
            async with self._sessions() as own:
                return await self.poll(own)
        rows = (
            await session.scalars(
                select(PresenceChange)
                .where(PresenceChange.id >= self._floor)
                .order_by(PresenceChange.id)
                .limit(10_000)
            )
        ).all()
        return self._apply(rows, mine_too=False)

    def _apply(self, rows: Iterable[PresenceChange], *, mine_too: bool) -> int:
        applied = 0
        now = datetime.now(UTC)
        for row in rows:
            if row.id in self._seen:
                continue
            self._seen[row.id] = row.written_at
            if mine_too or row.instance != self.instance:
                self.presence.apply(_change(row), late=True)
                applied += 1
        # Everything older than `settle` is settled: forget it and raise the floor.
        settled = [i for i, at in self._seen.items() if now - at > self._settle]
        if settled:
            top = max(settled)
            self._floor = max(self._floor, top + 1)
            for i in [i for i in self._seen if i <= top]:
                del self._seen[i]
        self.applied += applied
        return applied


def _change(row: PresenceChange) -> Change:
    return Change(
        at=row.at,
        person_id=row.person_id,
        door_id=row.door_id,
        area_id=row.area_id,
        reason=Reason(row.reason),
        granted=row.granted,
        companions=tuple(row.companions),
        may_escort=row.may_escort,
        starts_free_access=row.starts_free_access,
        local_day=row.local_day,
        forgiven=row.forgiven,
    )
