"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from accessd.db import bulk
from accessd.db.base import utcnow
from accessd.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
_PENDING_KEY = "accessd.audit_pending"
_MARKS_KEY = "accessd.audit_savepoints"


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"not JSON serialisable in an audit record: {type(value).__name__}")


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form stored and hashed, so a read-back hashes the same."""
    result: dict[str, Any] = json.loads(json.dumps(data, default=_json_default))
    return result


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    data: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


async def _head(session: AsyncSession) -> AuditHead:
    """Locks the chain head for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers)."""
    found = await session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if found is None:
        found = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(found)
    return found


@dataclass(frozen=True, slots=True)
class _Pending:
    actor: str
    action: str
    entity: str
    entity_id: str
    data: dict[str, Any]


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Adds one entry to the caller's transaction; it joins the chain when that commits.
    `entity` is an `Entity` (tests/service/test_entities.py checks every call's).

    The chain head is locked only then, as the last lock the transaction takes. Locked at
    the first entry instead, writers that lock the same rows in another order deadlocked on
    PostgreSQL (an unfavorable adjudication suspending a credential that someone else was
    reporting lost at the same moment)."""
    await session.connection()  # begun, so a rollback is sure to drop the entry again
    pending: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    # Plain strings from here on, as they will be when read back and hashed again.
    pending.append(_Pending(actor, action, str(entity), str(entity_id), normalise(data or {})))


@event.listens_for(Session, "before_commit")
def _chain_pending(session: Session) -> None:
    """Appends the transaction's recorded entries under the locked head, at commit.

    Also when a savepoint is released, so that no entry can be left behind; the code takes
    savepoints before recording, so in practice this happens at the real commit."""
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    at = utcnow()
    for p in pending:
        seq = head.seq + 1
        digest = entry_hash(head.hash, seq, at, p.actor, p.action, p.entity, p.entity_id, p.data)
        session.add(
            AuditEntry(
                seq=seq,
                at=at,
                actor=p.actor,
                action=p.action,
                entity=p.entity,
                entity_id=p.entity_id,
                data=p.data,
                prev_hash=head.hash,
                hash=digest,
            )
        )
        head.seq, head.hash = seq, digest


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks: dict[SessionTransaction, int] = session.info.setdefault(_MARKS_KEY, {})
        marks[transaction] = len(session.info.get(_PENDING_KEY, ()))


@event.listens_for(Session, "after_transaction_end")
def _drop_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """Forgets entries of work that was rolled back: the whole transaction, or a savepoint
    (a released savepoint has already chained its entries, leaving nothing to cut)."""
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_MARKS_KEY, None)
    elif transaction.nested:
        mark = session.info.get(_MARKS_KEY, {}).pop(transaction, None)
        pending = session.info.get(_PENDING_KEY)
        if mark is not None and pending:
            del pending[mark:]


async def record_many(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    items: Iterable[tuple[object, Mapping[str, Any]]],
) -> int:
    """Appends many entries with one bulk write (imports); same chain as `record`.

    `data` must be JSON-native already (str, int, bool, None, lists, dicts, StrEnums): it
    is hashed and stored as given, without the round trip `record` makes."""
    head = await _head(session)
    at = utcnow()
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for entity_id, data in items:
        seq += 1
        digest = entry_hash(prev, seq, at, actor, action, entity, str(entity_id), data)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "entity": entity,
                "entity_id": str(entity_id),
                "data": data,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    await bulk.insert_rows(session, AuditEntry, rows)
    head.seq, head.hash = seq, prev
    return len(rows)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


async def verify(session: AsyncSession, *, batch: int = 5000) -> VerifyResult:
    """Walks the chain in order; names the first entry that was altered, removed or added."""
    expected_seq, prev = 1, GENESIS_HASH
    checked = 0
    last_seq = 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq >= expected_seq)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(
                    False, checked, expected_seq, f"entry {expected_seq} is missing"
                )
            if row.prev_hash != prev:
                return VerifyResult(
                    False, checked, row.seq, f"entry {row.seq} does not link to entry {row.seq - 1}"
                )
            digest = entry_hash(
                row.prev_hash,
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.entity,
                row.entity_id,
                row.data,
            )
            if digest != row.hash:
                return VerifyResult(
                    False, checked, row.seq, f"entry {row.seq} was altered after it was written"
                )
            prev, last_seq = row.hash, row.seq
            expected_seq += 1
            checked += 1
        session.expunge_all()
    head = await session.scalar(select(AuditHead).where(AuditHead.id == 1))
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != last_seq or head_hash != prev:
        # Name an entry that exists or should: the first one missing at the end, the first
        # one added beyond the head, or the last one, rewritten with a fresh hash.
        if last_seq < head_seq:
            broken = last_seq + 1
        elif last_seq > head_seq:
            broken = head_seq + 1
        else:
            broken = last_seq
        return VerifyResult(
            False,
            checked,
            broken,
            f"the chain head names entry {head_seq} but the log ends at entry {last_seq}"
            if head_seq != last_seq
            else f"entry {last_seq} does not match the chain head",
        )
    stray = await session.scalar(select(func.count()).where(AuditEntry.seq < 1))
    if stray:
        return VerifyResult(False, checked, 0, "entries with sequence numbers below 1 exist")
    return VerifyResult(True, checked)
