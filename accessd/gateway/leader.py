"""One instance publishes the panels' caches: leadership by a PostgreSQL advisory lock.

Every instance answers requests (the shared subscription splits them), but two publishing
caches would each send their own versions and salts and the panels would flip between them.
The instance holding the session-level advisory lock publishes; the lock goes with its
connection, so when that instance dies another takes over at its next try. SQLite serves a
single instance, which always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

#: The advisory lock's key: "accessd cache" in ASCII, fits a bigint.
LOCK_KEY = int.from_bytes(b"acsdcach", "big") >> 1
RETRY_SECONDS = 5.0


class Leadership:
    """``await run(on_elected)``: tries for the lock until it holds it, then calls
    ``on_elected`` once and keeps the connection (and so the lock) until cancelled."""

    def __init__(self, engine: AsyncEngine, *, retry: float = RETRY_SECONDS) -> None:
        self._engine = engine
        self._retry = retry
        self.leading = False

    async def run(self, on_elected: Callable[[], Awaitable[None]]) -> None:
        if self._engine.dialect.name != "postgresql":
            self.leading = True
            await on_elected()
            return
        while True:
            conn: AsyncConnection | None = None
            try:
                conn = await self._engine.connect()
                got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                await conn.commit()  # the lock is the session's; end the transaction
                if got:
                    self.leading = True
                    log.info("this instance publishes the panels' credential caches")
                    await on_elected()
                    while True:  # hold the connection; check it now and then
                        await asyncio.sleep(self._retry)
                        await conn.scalar(text("SELECT 1"))
                        await conn.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cache-publisher leadership: database trouble; trying again")
            finally:
                self.leading = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self._retry)
