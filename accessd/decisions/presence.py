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
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
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
#: Rows one poll reads at most; a longer backlog is read over the next polls.
POLL_LIMIT = 10_000
#: Old rows deleted by one `compact`.
COMPACT_LIMIT = 10_000


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
        #: (when, the table's highest id then) of each poll within `settle`.
        self._tops: deque[tuple[datetime, int]] = deque()
        self.applied = 0
        #: Rows the polls read (what a poll costs grows with it).
        self.read = 0

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
        # This instance's own rows are applied already: not read again (at hundreds of
        # decisions a second, re-reading the settle window of them on every poll was most
        # of what the sequential decision path lost to this feed).
        rows = (
            await session.scalars(
                select(PresenceChange)
                .where(PresenceChange.id >= self._floor, PresenceChange.instance != self.instance)
                .order_by(PresenceChange.id)
                .limit(POLL_LIMIT)
            )
        ).all()
        self.read += len(rows)
        applied = self._apply(rows, mine_too=False)
        if len(rows) < POLL_LIMIT:
            # The table's highest id, sampled ten times a settle window (3 s), not at every
            # 0.1 s poll: the floor moves by samples `settle` old, so more buy nothing.
            now = datetime.now(UTC)
            if not self._tops or now - self._tops[-1][0] >= self._settle / 10:
                top = await session.scalar(select(func.max(PresenceChange.id)))
                self._settle_up_to(int(top or 0), now)
        else:
            # A backlog past the limit (a start after a busy day): what was read and is
            # older than `settle` is settled, so the next poll reads on from there.
            self._tops.clear()
            now = datetime.now(UTC)
            old = [row.id for row in rows if now - row.written_at > self._settle]
            if old:
                self._raise_floor(max(old) + 1)
        return applied

    async def compact(self, now: datetime, *, limit: int = COMPACT_LIMIT) -> int:
        """Deletes up to ``limit`` rows older than twice the horizon (nobody replays them:
        a start reads one horizon back; the decisions themselves are kept, as evidence, in
        decision_events); returns how many. Every instance may run it: a row deleted twice
        is deleted once."""
        cutoff = now - 2 * self._horizon
        async with self._sessions() as session:
            oldest = (
                select(PresenceChange.id)
                .where(PresenceChange.at < cutoff)
                .order_by(PresenceChange.id)
                .limit(limit)
                .scalar_subquery()
            )
            # In slices by id: one short transaction each, never a long lock on the table.
            result = await session.execute(
                delete(PresenceChange).where(PresenceChange.id.in_(oldest))
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    def _apply(self, rows: Iterable[PresenceChange], *, mine_too: bool) -> int:
        applied = 0
        for row in rows:
            if row.id in self._seen:
                continue
            self._seen[row.id] = row.written_at
            if mine_too or row.instance != self.instance:
                self.presence.apply(_change(row), late=True)
                applied += 1
        self.applied += applied
        return applied

    def _settle_up_to(self, top: int, now: datetime) -> None:
        """Raises the floor past rows that can no longer change: every id up to the table's
        highest of `settle` ago was committed (or never will be) by now, and read by the
        polls since, each of which read all there was."""
        self._tops.append((now, top))
        settled: int | None = None
        while self._tops and now - self._tops[0][0] > self._settle:
            settled = self._tops.popleft()[1]
        if settled is not None:
            self._raise_floor(settled + 1)

    def _raise_floor(self, floor: int) -> None:
        self._floor = max(self._floor, floor)
        for i in [i for i in self._seen if i < self._floor]:
            del self._seen[i]


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
