"""Panel events stored once each, in batches off the message path.

An event is unique by (panel, event id): a panel that uploads its buffer again after an
outage, or a broker that redelivers a QoS 1 message, adds nothing (INSERT … ON CONFLICT DO
NOTHING on both databases). A panel's event is confirmed to it (`confirmed`, then the
gateway's ``ack``) only once its batch has committed — a copy that was already stored is
confirmed too, since it is just as safe — so the panel forgets nothing accessd holds only
in memory. Events wait in a bounded queue, each at most once however often its panel
sends it again; when the database is away the oldest are dropped first and counted — the
panel still holds them and uploads again, so nothing is lost for good while its buffer
lasts. Nothing is spooled to a local file: the panels' buffers are the spool.

An event the database would refuse (NaN in its data, NUL in a key, a time that cannot be
taken to UTC: `accessd.db.storable`) is not queued as it is: a dead letter takes its place,
an ``error`` event under the same panel and event id that keeps what the panel sent, in
printable text, and why it was refused. One refused for a reason not foreseen there is
found by halving its batch (`BatchWriter.isolates`) and dead-lettered the same way. Either
way the event is kept as evidence and confirmed to its panel like any stored one, so the
panel does not send it forever, and the events around it are stored as usual. A copy sent
again meets the dead letter's key and is stored once, like any other duplicate.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.base import utcnow
from accessd.db.batches import BatchWriter
from accessd.db.storable import json_problem, moment_problem, printable
from accessd.models.panel_events import ALARM_TYPES, PanelEvent
from drivers.listeners import Listeners

log = logging.getLogger(__name__)


#: What a dead letter keeps of the refused event's data, in characters of JSON text.
DEAD_DATA_CHARS = 2000
#: Seconds between two log lines about one panel's dead letters: a panel whose firmware
#: writes NaN into every event must not write a log line an event (each is a row anyway).
DEAD_LETTER_LOG_EVERY = 60.0


class PanelEventStore(BatchWriter[dict[str, Any]]):
    what = "panel events"
    isolates = True

    def __init__(self, sessions: async_sessionmaker[AsyncSession], **kwargs: Any) -> None:
        kwargs.setdefault("max_queue", 500_000)
        super().__init__(sessions, **kwargs)
        self.queued_total = 0
        self.duplicates = 0  # rows the database already had
        self.requeued = 0  # uploaded again while still queued: kept once
        #: Events stored as a dead letter instead (refused before queueing, or alone by
        #: the database), and of them those whose dead letter failed too (dropped).
        self.dead_lettered = 0
        #: panel id -> (when its dead letters were last logged, how many since).
        self._dead_said: dict[int, tuple[float, int]] = {}
        # (panel id, event id) of the panels' events queued now, so that a panel sending
        # its unconfirmed events again during an outage does not fill the queue with copies.
        self._queued_keys: set[tuple[int, str]] = set()
        #: panel id -> seqs committed and not yet confirmed to the panel (the gateway
        #: takes them with `take_confirmed`).
        self.confirmed: defaultdict[int, list[int]] = defaultdict(list)
        #: Called after each commit that confirmed something.
        self.on_confirmed: Listeners[[]] = Listeners("panel events confirmed", logger=log)

    def add(
        self,
        *,
        panel_id: int,
        event_id: str,
        type: str,
        at: datetime,
        seq: int | None = None,
        door_id: int | None = None,
        reader_id: int | None = None,
        data: dict[str, Any] | None = None,
        source: str = "panel",
        confirms: int | None = None,
    ) -> None:
        """Queues one event; ``confirms``: a panel's seq to confirm once this is stored
        (accessd's record of a panel's event it refused)."""
        if source == "panel":
            key = (panel_id, event_id)
            if key in self._queued_keys:
                self.requeued += 1
                return
            self._queued_keys.add(key)
        item = {
            "panel_id": panel_id,
            "event_id": event_id,
            "seq": seq,
            "at": at,
            "received_at": utcnow(),
            "type": type,
            "door_id": door_id,
            "reader_id": reader_id,
            "alarm": type in ALARM_TYPES,
            "data": data or {},
            "source": source,
            "confirms": confirms,
        }
        problem = moment_problem(at, "at") or json_problem(item["data"], "data")
        if problem is not None:
            item = self._dead_letter(item, problem)
        self._enqueue(item)
        self.queued_total += 1

    def _dead_letter(
        self, item: dict[str, Any], reason: str, *, trust_at: bool = True
    ) -> dict[str, Any]:
        """The ``error`` event stored instead of ``item``: same panel and event id (a copy
        sent again is a duplicate of it), confirming what ``item`` would have, and holding
        what ``item`` said as printable text. ``trust_at``: whether its ``at`` may be kept
        (False when what the database refused is unknown)."""
        self.dead_lettered += 1
        self._say_dead_letter(item, reason)
        kept = json.dumps(item["data"], default=repr, allow_nan=True, ensure_ascii=True)
        now = utcnow()
        # The panel's own time when that is not what was refused (when a door was forced
        # matters); else the time it arrived, and the panel's text in ``data``.
        at = item["at"] if trust_at and moment_problem(item["at"], "at") is None else now
        return {
            **item,
            "at": at,
            "received_at": now,
            "type": "error",
            "alarm": True,
            "source": "accessd",
            "confirms": item["seq"] if item["source"] == "panel" else item["confirms"],
            "data": {
                "what": "dead_letter",
                "reason": printable(reason),
                "type": item["type"],
                "source": item["source"],
                "at": printable(item["at"].isoformat()),
                "data": printable(kept, DEAD_DATA_CHARS),
            },
        }

    def _say_dead_letter(self, item: dict[str, Any], reason: str) -> None:
        now = time.monotonic()
        said, since = self._dead_said.get(item["panel_id"], (None, 0))
        if said is not None and now - said < DEAD_LETTER_LOG_EVERY:
            self._dead_said[item["panel_id"]] = (said, since + 1)
            return
        self._dead_said[item["panel_id"]] = (now, 0)
        log.warning(
            "panel %d event %s refused: %s; stored as a dead letter (%d more of this panel's "
            "since the last such line; the next are said after %g s)",
            item["panel_id"],
            item["event_id"],
            printable(reason),
            since,
            DEAD_LETTER_LOG_EVERY,
        )

    def _rejected(self, item: dict[str, Any], error: Exception) -> dict[str, Any] | None:
        if item["data"].get("what") == "dead_letter" and item["source"] == "accessd":
            return None  # refused once already: no letter about a letter
        orig = getattr(error, "orig", None)
        kind = type(orig if isinstance(orig, BaseException) else error).__name__
        return self._dead_letter(item, f"refused by the database ({kind})", trust_at=False)

    def _lost(self, item: dict[str, Any], error: Exception) -> None:
        # Neither it nor its dead letter could be stored: not confirmed, so its panel sends
        # it again (and it is isolated again, not holding up the others).
        self._queued_keys.discard((item["panel_id"], item["event_id"]))

    def _written(self, taken: int, new: int) -> None:
        self.stored += new
        self.duplicates += taken - new

    def _dropped(self, item: dict[str, Any]) -> None:
        self._queued_keys.discard((item["panel_id"], item["event_id"]))

    def _committed(self, items: list[dict[str, Any]]) -> None:
        confirmed = False
        for item in items:
            seq = item["seq"] if item["source"] == "panel" else item["confirms"]
            # A dead letter holds its panel event's key: a no-op for accessd's own records.
            self._queued_keys.discard((item["panel_id"], item["event_id"]))
            if seq is not None:
                self.confirmed[item["panel_id"]].append(seq)
                confirmed = True
        if confirmed:
            self.on_confirmed.emit()

    def take_confirmed(self) -> dict[int, list[int]]:
        """Panel id -> seqs committed since the last call."""
        taken, self.confirmed = dict(self.confirmed), defaultdict(list)
        return taken

    async def write(self, session: AsyncSession, items: list[dict[str, Any]]) -> int:
        dialect = session.get_bind().dialect.name
        stmt: Any
        if dialect == "postgresql":
            stmt = postgresql.insert(PanelEvent).on_conflict_do_nothing(
                index_elements=["panel_id", "event_id"]
            )
        elif dialect == "sqlite":
            stmt = sqlite.insert(PanelEvent).on_conflict_do_nothing(
                index_elements=["panel_id", "event_id"]
            )
        else:  # pragma: no cover - the two supported databases are above
            stmt = insert(PanelEvent)
        # The same event twice in one batch (a redelivery racing the upload) would still
        # conflict with itself; keep its first copy.
        unique = list({(r["panel_id"], r["event_id"]): r for r in reversed(items)}.values())
        # "confirms" is the gateway's, not a column.
        unique = [{k: v for k, v in r.items() if k != "confirms"} for r in unique]
        result = await session.execute(stmt.returning(PanelEvent.id), unique)
        return len(result.all())
