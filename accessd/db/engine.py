"""Engine and session factory, built from settings (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from accessd.config import Settings


def make_engine(
    database_url: str,
    *,
    connect_timeout: float = 5.0,
    statement_timeout: float = 15.0,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine whose every wait is bounded (settings: database_connect_timeout_seconds,
    database_statement_timeout_seconds), so a database that is down or hangs costs a
    request seconds and an error, never a hung worker."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", connect_timeout)
    connect_args = {
        "timeout": connect_timeout,
        # Client side: a server that stopped answering (SIGSTOP, a partition) cannot
        # enforce its own statement_timeout.
        "command_timeout": statement_timeout,
        "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))},
        **kwargs.pop("connect_args", {}),
    }
    engine = create_async_engine(database_url, connect_args=connect_args, **kwargs)
    _TIMEOUTS[engine.sync_engine] = Timeouts(connect_timeout, statement_timeout)
    return engine


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    statement: float = 15.0


#: The bounds each engine was made with, for connections opened beside its pool (the
#: decision store's own asyncpg connection): a database that hangs must not hold them longer.
_TIMEOUTS: WeakKeyDictionary[Engine, Timeouts] = WeakKeyDictionary()


def timeouts_of(engine: AsyncEngine) -> Timeouts:
    """The connect and statement bounds ``engine`` was made with (the defaults when it was
    not made by `make_engine`)."""
    return _TIMEOUTS.get(engine.sync_engine, Timeouts())


def engine_from(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """`make_engine` with the settings' timeouts."""
    return make_engine(
        settings.database_url,
        connect_timeout=settings.database_connect_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds,
        **kwargs,
    )


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # SQLite leaves foreign keys off by default; WAL lets readers run beside a writer.
        # pysqlite's implicit BEGIN would defer the write lock; BEGIN IMMEDIATE is issued
        # explicitly on "begin" below so two writers cannot both read the audit head.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
