from __future__ import annotations

from datetime import datetime
from typing import Any

from accessd.api.schemas.common import Public


class AuditEntryPublic(Public):
    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerification(Public):
    ok: bool
    entries: int
    first_broken_seq: int | None
    problem: str | None
