"""Decision events: every decision is stored, in batches written off the request path.

On PostgreSQL the store keeps one asyncpg connection of its own and COPYs each batch in a
transaction on it, without an ORM session, a pool checkout (and its pre-ping) or greenlet
hops: those ran on the event loop between decisions and were most of what the writes cost
the sequential decision path (bench/decisions_mqtt.py). A failed write drops the
connection; the next flush makes a new one and the batch goes again (accessd.db.batches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.db import bulk
from accessd.db.batches import BatchWriter
from accessd.db.engine import Timeouts, timeouts_of
from accessd.models import DecisionBatch, DecisionEvent
from policies.decision import AccessRequest, Decision


@dataclass(slots=True)
class _Item:
    """A decision waiting to be written."""

    decision: Decision
    request: AccessRequest
    source: str
    request_id: str | None
    #: The token of the last write it was in that failed: maybe committed after all.
    tried: str | None = None


#: Rows made between two turns of the event loop while writing, while the store keeps up:
#: a decision then waits behind at most this many.
ROW_SLICE = 16
#: Once this many more wait behind the batch being written, decisions come faster than
#: writes of ROW_SLICE keep up with (at 64 requests in flight, bench/decisions_mqtt.py:
#: 12,000 of 20,000 decisions still queued at the end of the run); slices of BACKLOG_SLICE
#: then give the writer its share of the loop, so the queue never grows to where it drops.
BACKLOG = 2000
BACKLOG_SLICE = 256


#: How long a batch's token is kept: far longer than any retry takes to come.
KEEP_TOKENS = timedelta(days=1)
PRUNE_EVERY_S = 3600.0

log = logging.getLogger(__name__)


class DecisionStore(BatchWriter[_Item]):
    """Every decision, queued as it is and turned into a row (its trail formatted) only
    when written; see accessd.db.batches for the queue's behaviour."""

    what = "decision events"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **kwargs: Any) -> None:
        super().__init__(sessions, **kwargs)
        bind = sessions.kw.get("bind")
        self._dsn: str | None = None
        self._timeouts = Timeouts()
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            url = bind.url.set(drivername="postgresql")
            self._dsn = url.render_as_string(hide_password=False)
            self._timeouts = timeouts_of(bind)
        self._conn: Any = None
        #: Items found already stored when their write was retried (their commit had
        #: not been acknowledged).
        self.recovered = 0
        self._pruned = 0.0

    async def _write_batch(self, items: list[_Item]) -> int:
        """One batch and its token in one transaction. Items of a write that failed are
        first looked up by that write's token: a commit the database made but never
        acknowledged (a dropped connection, a timed-out wait) must not store them twice."""
        tried = {item.tried for item in items if item.tried is not None}
        if tried:
            landed = await self._landed(tried)
            if landed:
                kept = [item for item in items if item.tried not in landed]
                self.recovered += len(items) - len(kept)
                items = kept
        if not items:
            return 0
        token = uuid.uuid4().hex
        try:
            if self._dsn is None:
                async with self._sessions() as session:
                    await self.write(session, items)
                    session.add(DecisionBatch(token=token))
                    await session.commit()
            else:
                await self._copy(items, token)
        except BaseException:
            for item in items:
                item.tried = token
            raise
        await self._prune()
        return len(items)

    async def _copy(self, items: list[_Item], token: str) -> None:
        step = self.slice()
        rows = []
        for n, item in enumerate(items, 1):
            rows.append(_row(item))
            if n % step == 0:
                await asyncio.sleep(0)
        conn = await self._connection()
        try:
            async with conn.transaction():
                await bulk.copy_rows(conn, _decision_table(), rows, step)
                await conn.execute(
                    "INSERT INTO decision_batches (token, written_at) VALUES ($1, now())", token
                )
        except BaseException:
            await self._drop()
            raise

    async def _landed(self, tokens: set[str]) -> set[str]:
        """Which of ``tokens`` the database holds (their batches were committed)."""
        if self._dsn is None:
            async with self._sessions() as session:
                found = await session.scalars(
                    select(DecisionBatch.token).where(DecisionBatch.token.in_(tokens))
                )
                return set(found)
        conn = await self._connection()
        rows = await conn.fetch(
            "SELECT token FROM decision_batches WHERE token = ANY($1::text[])", list(tokens)
        )
        return {str(r["token"]) for r in rows}

    async def _prune(self) -> None:
        """Deletes tokens older than `KEEP_TOKENS` (a write is retried within minutes),
        at most once an hour."""
        now = time.monotonic()
        if now - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = now
        cutoff = datetime.now(UTC) - KEEP_TOKENS
        if self._dsn is None:
            async with self._sessions() as session:
                await session.execute(
                    delete(DecisionBatch).where(DecisionBatch.written_at < cutoff)
                )
                await session.commit()
            return
        conn = await self._connection()
        await conn.execute("DELETE FROM decision_batches WHERE written_at < $1", cutoff)

    def slice(self) -> int:
        """Rows to make between two turns of the loop, by how far the writes are behind."""
        return BACKLOG_SLICE if self.queued >= BACKLOG else ROW_SLICE

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            import asyncpg  # type: ignore[import-untyped]

            assert self._dsn is not None
            # The engine's bounds: a database that hangs fails the write (the batch goes
            # again later) instead of holding the writer, and a shutdown, forever.
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=self._timeouts.connect,
                command_timeout=self._timeouts.statement,
                server_settings={"statement_timeout": str(int(self._timeouts.statement * 1000))},
            )
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)

    async def stop(self) -> None:
        await super().stop()
        await self._drop()

    def add(
        self,
        decision: Decision,
        request: AccessRequest,
        source: str,
        request_id: str | None = None,
    ) -> None:
        self._enqueue(_Item(decision, request, source, request_id))

    async def write(self, session: AsyncSession, items: list[_Item]) -> int:
        # A row takes about 14 us to make here (the trail's formatting most of it): a
        # flush of 200 would hold the loop, and the decisions waiting on it, for 3 ms.
        await bulk.insert_rows(session, DecisionEvent, map(_row, items), yield_every=self.slice())
        return len(items)


def _decision_table() -> Table:
    table = DecisionEvent.__table__
    assert isinstance(table, Table)
    return table


def _row(item: _Item) -> dict[str, Any]:
    decision, request, source, request_id = (
        item.decision,
        item.request,
        item.source,
        item.request_id,
    )
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
        "request_id": request_id,
    }
