"""One instance publishes the panels' caches: leadership by a PostgreSQL advisory lock.

Every instance answers requests (the shared subscription splits them), but two publishing
caches would each send their own versions and salts and the panels would flip between them.
The instance holding the session-level advisory lock publishes; the lock goes with its
connection, so when that instance dies another takes over at its next try. SQLite serves a
single instance, which always leads.

A term of leadership is one task: the leader's work runs only while the lock is held and is
cancelled, and awaited, before the lock's connection is let go. So a database blip ends the
term (and its loops) before the next one starts, on this instance or another: never two
sets of publishing loops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

#: The advisory lock's key: "accessd cache" in ASCII, fits a bigint.
LOCK_KEY = int.from_bytes(b"acsdcach", "big") >> 1
RETRY_SECONDS = 5.0


class LeadershipLost(Exception):
    """The lock's connection failed its check: the term ends."""


class Leadership:
    """``await run(lead)``: tries for the lock until it holds it, then runs ``lead()`` for as
    long as it holds it; ``lead`` is cancelled when the lock is lost (or ``lead`` ends the
    term by raising), and a later term calls it afresh."""

    def __init__(self, engine: AsyncEngine, *, retry: float = RETRY_SECONDS) -> None:
        self._engine = engine
        self._retry = retry
        self.leading = False
        #: Terms begun by this instance (a test reads it: one a failover, not two).
        self.terms = 0

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        if self._engine.dialect.name != "postgresql":
            self.leading = True
            self.terms += 1
            try:
                await lead()
            finally:
                self.leading = False
            return
        while True:
            try:
                await self._term(lead)
            except asyncio.CancelledError:
                raise
            except LeadershipLost as exc:
                log.warning("cache-publisher leadership lost (%s); trying again", exc)
            except Exception:
                log.exception("cache-publisher leadership: trouble; trying again")
            await asyncio.sleep(self._retry)

    async def _term(self, lead: Callable[[], Awaitable[None]]) -> None:
        conn: AsyncConnection | None = None
        work = TaskSet("cache leadership term", logger=log)
        try:
            async with asyncio.timeout(self._retry * 2):
                conn = await self._engine.connect()
                got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                await conn.commit()  # the lock is the session's; end the transaction
            if not got:
                return
            self.leading = True
            self.terms += 1
            log.info("this instance publishes the panels' credential caches")
            task = work.spawn(_run(lead), name="cache leader")
            while True:  # hold the connection; check it now and then
                await asyncio.wait({task}, timeout=self._retry)
                if task.done():
                    # The TaskSet logged a failure with its traceback already.
                    failure = None if task.cancelled() else task.exception()
                    raise LeadershipLost(f"the leader's work ended: {failure!r}")
                try:
                    # Bounded here too: a database that hangs must end the term, not
                    # leave this instance publishing while it cannot know it leads.
                    async with asyncio.timeout(self._retry):
                        await conn.scalar(text("SELECT 1"))
                        await conn.commit()
                except Exception as exc:
                    raise LeadershipLost(f"{type(exc).__name__}: {exc}") from exc
        finally:
            # Stop the work first, then let the lock go: another instance may lead only
            # once this one has stopped publishing.
            await work.close()
            self.leading = False
            if conn is not None:
                await _discard(conn)


async def _run(lead: Callable[[], Awaitable[None]]) -> None:
    await lead()


async def _discard(conn: AsyncConnection) -> None:
    """Closes the lock's connection for good: returned to the pool it would keep holding
    the session-level lock, and nobody would lead."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await conn.invalidate()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await conn.close()
