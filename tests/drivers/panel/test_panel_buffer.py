"""The panel's event buffer on disk: seq and event ids, acknowledgement, restarts, size."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.panel.buffer import EventBuffer
from drivers.panel.errors import EventStoreError

AT = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def test_appended_events_get_increasing_seq_and_a_uuid4(tmp_path: Path) -> None:
    with EventBuffer(tmp_path / "p.db") as buffer:
        first = buffer.append("door_pos", AT, door=1, data={"position": "open"})
        second = buffer.append("access", AT, door=1, reader=2, data={"granted": True})
    assert second.seq == first.seq + 1
    assert uuid.UUID(first.event_id).version == 4 and first.event_id != second.event_id
    assert second.data == {"granted": True} and second.reader == 2


def test_pending_lists_unacknowledged_events_in_order(tmp_path: Path) -> None:
    with EventBuffer(tmp_path / "p.db") as buffer:
        events = [buffer.append("heartbeat", AT, data={"n": i}) for i in range(5)]
        buffer.ack(events[1].seq)
        buffer.ack(events[3].seq)
        assert [e.seq for e in buffer.pending()] == [events[0].seq, events[2].seq, events[4].seq]
        assert buffer.pending(1, after=events[2].seq)[0] == events[4]
        assert buffer.pending_count() == 3


def test_events_and_seq_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with EventBuffer(path) as buffer:
        kept = [buffer.append("access", AT, door=1, data={"granted": False}) for _ in range(3)]
        buffer.ack(kept[0].seq)
    with EventBuffer(path) as reopened:
        assert reopened.pending() == kept[1:]
        assert reopened.append("heartbeat", AT).seq == kept[-1].seq + 1


def test_seq_is_never_reused_after_acknowledged_events_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with EventBuffer(path, keep_acked=10) as buffer:
        for _ in range(2000):
            buffer.ack(buffer.append("heartbeat", AT).seq)
        rows = sqlite3.connect(path).execute("SELECT count(*) FROM events").fetchone()[0]
        assert rows <= 1010
        assert buffer.last_seq() == 2000
    with EventBuffer(path) as reopened:
        assert reopened.append("heartbeat", AT).seq == 2001


def test_it_holds_a_hundred_thousand_unacknowledged_events(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with EventBuffer(path) as buffer:
        for i in range(100_000):
            buffer.append("access", AT, door=1 + i % 4, reader=1, data={"granted": i % 2 == 0})
    with EventBuffer(path) as reopened:
        assert reopened.pending_count() == 100_000
        first, last = reopened.pending(1), reopened.pending(1, after=99_999)
        assert (first[0].seq, last[0].seq) == (1, 100_000)


def test_it_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    EventBuffer(path).close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_a_database_is_an_event_store_error(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(EventStoreError):
        EventBuffer(path)
