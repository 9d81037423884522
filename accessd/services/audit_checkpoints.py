"""Signed checkpoints of the audit chain's head, kept outside the database.

The chain alone (accessd/services/audit.py) catches an entry altered, removed or added in
the middle. It cannot catch whoever owns the database rewriting the tail and the head
together: the chain is plain SHA-256, so a re-hashed tail verifies as intact. A checkpoint
is the head (sequence number and hash) at a moment, with an HMAC under a key that lives
outside the database (settings: audit_checkpoint_key), appended as one JSON line to a file
outside it (audit_checkpoint_file: another disk, a WORM share, a path a log shipper
forwards) and logged. `verify` checks every checkpoint's MAC and that the database still
holds that entry with that hash; a rewritten past fails at the first checkpoint after the
rewrite began. The file is append-only by convention and read line by line: a line torn
by a crash is reported, never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.models import AuditEntry, AuditHead

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: str

    def mac(self, key: bytes) -> str:
        message = f"accessd-audit-checkpoint/v1|{self.seq}|{self.hash}|{self.at}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CheckResult:
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _read(path: Path) -> list[tuple[int, dict[str, object] | None]]:
    if not path.exists():
        return []
    out: list[tuple[int, dict[str, object] | None]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            out.append((number, None))
            continue
        out.append((number, value if isinstance(value, dict) else None))
    return out


def last_seq(path: Path) -> int:
    seqs = [int(str(v["seq"])) for _, v in _read(path) if v and str(v.get("seq", "")).isdigit()]
    return max(seqs, default=0)


async def write(session: AsyncSession, path: Path, key: bytes) -> Checkpoint | None:
    """Appends a checkpoint of the current head, unless the head has not moved since the
    last one; returns it (None when nothing was written)."""
    head = await session.scalar(select(AuditHead))
    if head is None or head.seq == 0 or head.seq <= last_seq(path):
        return None
    point = Checkpoint(head.seq, head.hash, datetime.now(UTC).isoformat(timespec="seconds"))
    line = json.dumps({"seq": point.seq, "hash": point.hash, "at": point.at, "mac": point.mac(key)})
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line with O_APPEND: concurrent writers (several instances) cannot
    # interleave inside a line; fsync, so a checkpoint said is a checkpoint kept.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit checkpoint: seq %d hash %s", point.seq, point.hash)
    return point


async def verify(session: AsyncSession, path: Path, key: bytes) -> CheckResult:
    """Every checkpoint in ``path`` against its MAC and against the database."""
    problems: list[str] = []
    checked = 0
    for number, value in _read(path):
        where = f"{path}:{number}"
        if value is None:
            problems.append(f"{where}: not a checkpoint line (torn or edited)")
            continue
        try:
            point = Checkpoint(int(str(value["seq"])), str(value["hash"]), str(value["at"]))
            mac = str(value["mac"])
        except (KeyError, ValueError):
            problems.append(f"{where}: not a checkpoint line (fields missing)")
            continue
        if not hmac.compare_digest(mac, point.mac(key)):
            problems.append(f"{where}: its MAC does not verify (forged, or another key)")
            continue
        checked += 1
        stored = await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == point.seq))
        if stored is None:
            problems.append(
                f"{where}: entry {point.seq}, checkpointed at {point.at}, is not in the database"
            )
        elif stored != point.hash:
            problems.append(
                f"{where}: entry {point.seq} has another hash than checkpointed at {point.at}: "
                "the trail was rewritten"
            )
    return CheckResult(checked, problems)
