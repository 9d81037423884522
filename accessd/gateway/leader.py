"""One instance publishes the panels' caches: leadership by a PostgreSQL advisory lock.

Every instance answers requests (the shared subscription splits them), but two publishing
caches would each send their own versions and salts and the panels would flip between them.
The instance holding the session-level advisory lock publishes; the lock goes with its
connection, so when that instance dies another takes over at its next try. SQLite serves a
single instance, which always leads.

A term of leadership is one task: the leader's work runs only while the lock is held and is
cancelled, and awaited, before the lock's connection is let go. So a database blip ends the
term (and its loops) before the next one starts on this instance. Another instance that gets
the lock because the holder's connection was cut waits out the time the holder takes to
notice (`Leadership.grace`, from the holder's last heartbeat in `cache_leadership`) before
it leads: never two sets of publishing loops at once, as long as each instance's checks run
within that bound. After a clean stop (the heartbeat cleared) the next holder leads at once.
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
#: Beyond two check intervals, for a loaded event loop that runs a check late.
GRACE_MARGIN_SECONDS = 1.0


#: Seconds since the last holder's heartbeat (NULL: none, or it stood down cleanly).
_BEAT_AGE = text(
    "SELECT EXTRACT(EPOCH FROM (clock_timestamp() - beat_at)) FROM cache_leadership WHERE id = 1"
)
_BEAT = text(
    "INSERT INTO cache_leadership (id, beat_at) VALUES (1, clock_timestamp()) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at"
)
_STOOD_DOWN = text("UPDATE cache_leadership SET beat_at = NULL WHERE id = 1")


class LeadershipLost(Exception):
    """The lock's connection failed its check: the term ends."""


class Leadership:
    """``await run(lead)``: tries for the lock until it holds it, then runs ``lead()`` for as
    long as it holds it; ``lead`` is cancelled when the lock is lost (or ``lead`` ends the
    term by raising), and a later term calls it afresh."""

    def __init__(self, engine: AsyncEngine, *, retry: float = RETRY_SECONDS) -> None:
        self._engine = engine
        self._retry = retry
        #: Seconds between taking the lock and leading: longer than a holder that lost
        #: it takes to notice (its check interval plus its check's bound).
        self.grace = 2 * retry + GRACE_MARGIN_SECONDS
        self.leading = False
        #: Seconds the last term waited for a previous holder to stand down.
        self.waited = 0.0
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
            # The lock is free the moment the last holder's connection is gone, but that
            # holder learns so only at its next check, up to one interval and one bounded
            # check later (a partition, a proxy cut): it may still be publishing. Until its
            # last heartbeat is `grace` old this one waits (a load test under a cut saw two
            # publishers at once); after a clean stop, or a long quiet, it leads at once.
            async with asyncio.timeout(self._retry):
                age = await conn.scalar(_BEAT_AGE)
                await conn.commit()
            self.waited = 0.0 if age is None else max(0.0, self.grace - float(age))
            if self.waited:
                log.info("cache lead: %.1f s for the last holder to stand down", self.waited)
                await asyncio.sleep(self.waited)
            await self._beat(conn)  # also proves the lock's connection still holds
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
                    await self._beat(conn)
                except Exception as exc:
                    raise LeadershipLost(f"{type(exc).__name__}: {exc}") from exc
        finally:
            # Stop the work first, then let the lock go: another instance may lead only
            # once this one has stopped publishing.
            await work.close()
            if self.leading:
                await self._stand_down(conn)
            self.leading = False
            if conn is not None:
                await _discard(conn)

    async def _stand_down(self, conn: AsyncConnection | None) -> None:
        """Clears the heartbeat after the work stopped, so the next holder need not wait.
        On the lock's connection, or, when a stop cancelled a statement on it midway and
        left it unusable (seen under load), on a fresh one; 2 s each at most."""
        for fresh in (False, True):
            try:
                async with asyncio.timeout(2.0):
                    if fresh or conn is None:
                        async with self._engine.connect() as other:
                            await other.execute(_STOOD_DOWN)
                            await other.commit()
                    else:
                        await conn.execute(_STOOD_DOWN)
                        await conn.commit()
                return
            except Exception as exc:  # the next holder waits out the grace instead
                log.info("cache lead: heartbeat not cleared (%s)", type(exc).__name__)

    async def _beat(self, conn: AsyncConnection) -> None:
        """The heartbeat, on the lock's connection. Bounded: a database that hangs must end
        the term, not leave this instance publishing while it cannot know it leads."""
        async with asyncio.timeout(self._retry):
            await conn.execute(_BEAT)
            await conn.commit()


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
