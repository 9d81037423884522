"""The panel's event buffer: every event goes to its own disk before the broker sees it.

One sqlite3 file per panel in WAL mode. An event gets its ``seq`` (the rowid under
AUTOINCREMENT, so never reused, even after pruning or a restart) and a uuid4 ``event_id``
when it is appended; it stays unacknowledged until accessd confirms it stored (the ``ack``
message, sent after its database commit) — the broker's PUBACK is not enough, since a
broker or service crash after it still loses the event. Acknowledged events are pruned
beyond ``keep_acked``; unacknowledged ones are never dropped, which is what "lose no
event" costs in disk.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.mqtt.messages import Event, EventType, Scalar
from drivers.panel.errors import EventStoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    door INTEGER,
    reader INTEGER,
    data TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_pending ON events (acked, seq);
"""


class EventBuffer:
    """An append-only event store; ``close()`` it (or use ``with``)."""

    def __init__(self, path: Path | str, *, keep_acked: int = 10_000) -> None:
        self.path = Path(path)
        self.keep_acked = keep_acked
        self._acked_since_prune = 0
        try:
            # isolation_level=None: transactions are explicit, so one append is one commit.
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL survives a process crash; only power loss can cost the last
            # commits, and an event lost that way was never published either.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise EventStoreError(f"cannot open the event buffer {self.path.name}: {exc}") from exc

    def __enter__(self) -> EventBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def append(
        self,
        type_: EventType,
        at: datetime,
        *,
        door: int | None = None,
        reader: int | None = None,
        data: dict[str, Scalar] | None = None,
    ) -> Event:
        """Store a new event and return it with its ``seq`` and ``event_id``."""
        event_id = str(uuid.uuid4())
        body = json.dumps(data or {}, separators=(",", ":"))
        try:
            cursor = self._db.execute(
                "INSERT INTO events (event_id, at, type, door, reader, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, at.isoformat(), type_, door, reader, body),
            )
        except sqlite3.Error as exc:
            raise EventStoreError(f"cannot append to the event buffer: {exc}") from exc
        seq = cursor.lastrowid
        assert seq is not None
        return Event(
            event_id=event_id,
            seq=seq,
            at=at,
            type=type_,
            door=door,
            reader=reader,
            data=data or {},
        )

    def pending(self, limit: int = 100, *, after: int = 0) -> list[Event]:
        """Unacknowledged events with ``seq`` above ``after``, oldest first."""
        rows = self._query(
            "SELECT seq, event_id, at, type, door, reader, data FROM events"
            " WHERE acked = 0 AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [
            Event(
                seq=seq,
                event_id=event_id,
                at=datetime.fromisoformat(at),
                type=type_,
                door=door,
                reader=reader,
                data=json.loads(data),
            )
            for seq, event_id, at, type_, door, reader, data in rows
        ]

    def pending_count(self) -> int:
        return int(self._query("SELECT count(*) FROM events WHERE acked = 0", ())[0][0])

    def last_seq(self) -> int:
        """The highest ``seq`` ever given (0 for a new buffer)."""
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'events'", ())
        return int(rows[0][0]) if rows else 0

    def unacked_through(self, seq: int) -> int:
        """How many unacknowledged events have ``seq`` at most ``seq``: those uploaded and
        not yet confirmed, when ``seq`` is the last one uploaded."""
        rows = self._query("SELECT count(*) FROM events WHERE acked = 0 AND seq <= ?", (seq,))
        return int(rows[0][0])

    def ack(self, seq: int) -> None:
        """accessd has stored the event ``seq``; prune old acknowledged ones."""
        self.ack_many((seq,))

    def ack_many(self, seqs: Iterable[int]) -> int:
        """accessd has stored these events (unknown or already acknowledged ones are
        ignored: a confirmation can come twice); returns how many were newly acknowledged."""
        seqs = list(seqs)
        try:
            # One transaction for the lot: one fsync point, not one a seq.
            self._db.execute("BEGIN")
            before = self._db.total_changes
            self._db.executemany(
                "UPDATE events SET acked = 1 WHERE seq = ? AND acked = 0", ((s,) for s in seqs)
            )
            newly = self._db.total_changes - before
            self._db.execute("COMMIT")
            self._acked_since_prune += newly
            if self._acked_since_prune >= 1000:
                self._acked_since_prune = 0
                self._prune()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise EventStoreError(f"cannot acknowledge in the event buffer: {exc}") from exc
        return newly

    def _prune(self) -> None:
        self._db.execute(
            "DELETE FROM events WHERE acked = 1 AND seq <= ("
            " SELECT seq FROM events WHERE acked = 1 ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (self.keep_acked,),
        )

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise EventStoreError(f"cannot read the event buffer: {exc}") from exc
