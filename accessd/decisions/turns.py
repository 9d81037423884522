"""Instances take turns on contended presence (policies.contention) through PostgreSQL
transaction-level advisory locks.

A decision whose outcome another instance's concurrent decision could change (the same badge
at two hard anti-passback doors at once, the last place of a full area, the second person at a
two-person door) is made again inside a transaction that holds the locks of its keys, after
reading the other instances' latest presence changes, and its own change is written in that
transaction: the lock passes to the next instance only once the change is committed, so the
next one reads it. Two-int advisory keys (namespace, id) do not collide with the single
bigint key of the cache leadership (accessd.gateway.leader): PostgreSQL keeps the two forms
apart.

Turns cost a transaction (about four round trips) and are taken only where a key applies.
They are bounded: a lock that is not had within `wait` seconds, or a database that is away,
and the decision is made from this instance's presence alone, as it is for every decision
when the database is down (doors keep deciding), and counted (`missed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policies.contention import Contended

#: The namespace of each kind of key: "ac" (accessd) in the high half, the kind below.
_NAMESPACE = 0x61630000

#: The longest a decision waits for another instance's turn: a panel waits 300 ms for its
#: answer, and a turn is a few milliseconds, so a longer wait means something is stuck.
WAIT_SECONDS = 0.2


class Turns:
    """Transactions holding advisory locks on PostgreSQL; on another database (SQLite: one
    process) there is nobody to take turns with, and `serializes` is False."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, wait: float = WAIT_SECONDS
    ) -> None:
        self._sessions = sessions
        self.wait = wait
        bind = sessions.kw.get("bind")
        self.serializes = bind is not None and bind.dialect.name == "postgresql"
        #: Decisions made in a turn, and those that fell back to this instance's presence.
        self.taken = 0
        self.missed = 0

    @contextlib.asynccontextmanager
    async def turn(self, keys: Sequence[tuple[Contended, int]]) -> AsyncIterator[AsyncSession]:
        """A transaction holding the locks of ``keys`` (taken in the order given, which
        policies.contention.turns sorts); committed when the block ends without error."""
        async with self._sessions() as session, session.begin():
            # SET LOCAL: the bound ends with this transaction, not with the pooled connection.
            await session.execute(text(f"SET LOCAL lock_timeout = '{int(self.wait * 1000)}ms'"))
            locks = ", ".join(f"pg_advisory_xact_lock(:ns{n}, :id{n})" for n in range(len(keys)))
            params: dict[str, int] = {}
            for n, (kind, ident) in enumerate(keys):
                params[f"ns{n}"] = _NAMESPACE + int(kind)
                params[f"id{n}"] = _int4(ident)
            # One statement: its target list is evaluated in order, so the sorted order holds.
            await session.execute(text(f"SELECT {locks}"), params)
            yield session


def _int4(ident: int) -> int:
    """Ids as the int4 a two-key advisory lock takes (ids beyond it share a lock: safe, as
    a shared lock only makes two decisions wait for each other)."""
    return ((ident + 2**31) % 2**32) - 2**31
