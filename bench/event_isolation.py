"""What a panel event the database refuses costs the event writer (issue 15): one flush of a
full batch with no bad row (the baseline, measured in the same run), with one, and with ten
rows refused for a reason the store's checks do not catch (the checks turned off): an
``at`` that overflows (refused in Python, as the rows are bound) or a NaN in ``data``
(refused by PostgreSQL itself), so the batch must be halved down to them. Prints, per case, the
flush time, the transactions it took, and what was stored, dead-lettered and lost.

    .venv/bin/python bench/event_isolation.py [--batch 2000] [--rounds 3] [--pg URL]

Needs PostgreSQL (a scratch database is made and dropped). Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from accessd.db.engine import make_engine, make_sessionmaker  # noqa: E402
from accessd.db.migrate import upgrade  # noqa: E402
from accessd.gateway import events as events_module  # noqa: E402
from accessd.gateway.events import PanelEventStore  # noqa: E402
from accessd.models.facilities import Facility, Panel  # noqa: E402

GOOD_AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
OVERFLOWING = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


class Counting(PanelEventStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transactions = 0

    async def _write_batch(self, items: list[dict[str, Any]]) -> int:
        self.transactions += 1
        return await super()._write_batch(items)


async def one_case(
    sessions: Any, panel_id: int, batch: int, bad: int, kind: str
) -> tuple[float, Counting]:
    store = Counting(sessions, batch=batch)
    bad_at = {int(i * batch / bad) for i in range(bad)} if bad else set()
    for seq in range(batch):
        store.add(
            panel_id=panel_id,
            event_id=str(uuid.uuid4()),
            seq=seq,
            type="door_pos",
            at=OVERFLOWING if seq in bad_at and kind == "at" else GOOD_AT,
            data={"open": float("nan") if seq in bad_at and kind == "nan" else 1.0},
        )
    started = time.perf_counter()
    await store.flush()
    return time.perf_counter() - started, store


async def run(args: argparse.Namespace) -> None:
    name = f"accessd_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = make_engine(f"{base}/{name}")
    try:
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        async with sessions() as s:
            facility = Facility(code="b", name="Bench", timezone="UTC", security_level=3)
            s.add(facility)
            await s.flush()
            panel = Panel(facility_id=facility.id, name="p1", transport="mqtt")
            s.add(panel)
            await s.commit()
            panel_id = panel.id
        # The checks off: the refused rows reach the database layer, as unforeseen ones do.
        events_module.moment_problem = lambda value, where: None
        events_module.json_problem = lambda value, where: None
        print(f"one flush of {args.batch} panel events on PostgreSQL, {args.rounds} rounds")
        for kind, bad in (("at", 0), ("at", 1), ("at", 10), ("nan", 1), ("nan", 10)):
            times, store = [], None
            for _ in range(args.rounds):
                took, store = await one_case(sessions, panel_id, args.batch, bad, kind)
                times.append(took)
            assert store is not None
            median = statistics.median(times) * 1000
            print(
                f"  {bad:2d} refused ({kind:3s}): median {median:7.1f} ms, "
                f"{store.transactions:3d} transactions, stored {store.stored}, "
                f"dead-lettered {store.dead_lettered}, lost {store.lost}"
            )
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
