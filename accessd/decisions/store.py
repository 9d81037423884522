"""Decision events: every decision is stored, in batches written off the request path."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
from accessd.db.batches import BatchWriter
from accessd.models import DecisionEvent
from policies.decision import AccessRequest, Decision

_Item = tuple[Decision, AccessRequest, str]

#: Rows made between two turns of the event loop while writing.
ROW_SLICE = 16


class DecisionStore(BatchWriter[_Item]):
    """Every decision, queued as it is and turned into a row (its trail formatted) only
    when written; see accessd.db.batches for the queue's behaviour."""

    what = "decision events"

    def add(self, decision: Decision, request: AccessRequest, source: str) -> None:
        self._enqueue((decision, request, source))

    async def write(self, session: AsyncSession, items: list[_Item]) -> int:
        # A row takes about 14 us to make here (the trail's formatting most of it): a
        # flush of 200 would hold the loop, and the decisions waiting on it, for 3 ms.
        await bulk.insert_rows(session, DecisionEvent, map(_row, items), yield_every=ROW_SLICE)
        return len(items)


def _row(item: _Item) -> dict[str, Any]:
    decision, request, source = item
    return {
        "at": request.at,
        "reader_id": request.reader_id,
        "door_id": decision.door_id,
        "person_id": decision.person_id,
        "credential_id": decision.credential_id,
        "granted": decision.granted,
        "reason": decision.reason.value,
        "required": list(decision.required),
        "violation": decision.violation,
        "trail": list(decision.trail),
        "source": source,
    }
