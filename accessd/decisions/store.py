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
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.db import bulk
from accessd.db.batches import BatchWriter
from accessd.db.engine import Timeouts, timeouts_of
from accessd.models import DecisionEvent
from policies.decision import AccessRequest, Decision

_Item = tuple[Decision, AccessRequest, str, str | None]

#: Rows made between two turns of the event loop while writing, while the store keeps up:
#: a decision then waits behind at most this many.
ROW_SLICE = 16
#: Once this many more wait behind the batch being written, decisions come faster than
#: writes of ROW_SLICE keep up with (at 64 requests in flight, bench/decisions_mqtt.py:
#: 12,000 of 20,000 decisions still queued at the end of the run); slices of BACKLOG_SLICE
#: then give the writer its share of the loop, so the queue never grows to where it drops.
BACKLOG = 2000
BACKLOG_SLICE = 256


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

    async def _write_batch(self, items: list[_Item]) -> int:
        if self._dsn is None:
            return await super()._write_batch(items)
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
        except BaseException:
            await self._drop()
            raise
        return len(items)

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
        self._enqueue((decision, request, source, request_id))

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
    decision, request, source, request_id = item
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
