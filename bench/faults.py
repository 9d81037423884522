"""The "no event lost" faults of issue 14 (tests/faults/scenarios.py, the same scenarios
tests/faults/test_no_event_lost.py runs), at the bench pace: a higher event rate, longer
outages and the full 10-minute backlog of 100,000 events. Prints, per fault,
generated/stored/lost/doubled and the recovery time (from the end of the fault until every
panel's buffer is confirmed), then the summary line the issue asks for.

    .venv/bin/python bench/faults.py [--rate 500] [--backlog 100000] [--only TEXT] [--pg URL]

Needs PostgreSQL (a scratch database is made and dropped) and mosquitto on PATH; accessd
runs as `accessd serve` subprocesses, the panels in this process. Figures only: nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SELF.parent))

from accessd.db.engine import make_engine, make_sessionmaker  # noqa: E402
from accessd.db.migrate import upgrade  # noqa: E402
from drivers.mqtt.access import SERVICE_USER, panel_username  # noqa: E402
from tests.faults.events import PANELS, rig  # noqa: E402
from tests.faults.scenarios import BENCH, FAULTS, Pace, Scenario  # noqa: E402
from tests.faults.tcp_proxy import TcpProxy  # noqa: E402
from tests.mqtt_broker import MosquittoBroker  # noqa: E402


@asynccontextmanager
async def scratch_database(pg: str) -> AsyncIterator[str]:
    """A database of its own for one fault, dropped afterwards; yields its URL."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"accessd_faults_{uuid.uuid4().hex[:8]}"
    base = pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{base}/{name}"
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def one_fault(
    name: str, fault: Scenario, pace: Pace, args: argparse.Namespace
) -> dict[str, object]:
    panels = [("hq", p) for p in PANELS]
    users = {SERVICE_USER: secrets.token_urlsafe(32)}
    users |= {panel_username(s, p): secrets.token_urlsafe(32) for s, p in panels}
    broker = MosquittoBroker.with_users(users, panels)
    broker.start()
    try:
        async with scratch_database(args.pg) as url:
            engine = make_engine(url)
            await upgrade(engine)
            proxy = TcpProxy("127.0.0.1", 5432)
            await proxy.start()
            tmp = Path(tempfile.mkdtemp(prefix="accessd-faults-"))
            try:
                async with rig(
                    url,
                    make_sessionmaker(engine),
                    broker,
                    users,
                    tmp,
                    accessd_db_url=proxy.url(url.rsplit("/", 1)[1]),
                ) as r:
                    await r.start_panels()
                    outcome = await fault(r, proxy, pace)
                    count = await r.count()
                    resent = sum(s.stats.resent for s in r.panels.values())
            finally:
                await proxy.close()
                await engine.dispose()
    finally:
        broker.stop()
    line: dict[str, object] = {"fault": name, **count.as_dict()}
    line |= {"resent": resent, "recovery_s": round(outcome.recovery_s, 2)}
    if outcome.stop_s:
        line |= {"stopped_in_s": round(outcome.stop_s, 2), "held_at_stop": outcome.held_at_stop}
    print(json.dumps(line), flush=True)
    return line


async def main(args: argparse.Namespace) -> None:
    pace = replace(BENCH, rate=args.rate, backlog=args.backlog)
    chosen = {n: f for n, f in FAULTS.items() if not args.only or args.only in n}
    lines = [await one_fault(name, fault, pace, args) for name, fault in chosen.items()]
    summary = {
        "faults": len(lines),
        "generated": sum(int(str(x["generated"])) for x in lines),
        "stored": sum(int(str(x["stored"])) for x in lines),
        "lost": sum(int(str(x["lost"])) for x in lines),
        "doubled": sum(int(str(x["doubled"])) for x in lines),
        "worst_recovery_s": max(float(str(x["recovery_s"])) for x in lines),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=BENCH.rate, help="events/s from each panel")
    parser.add_argument("--backlog", type=int, default=BENCH.backlog)
    parser.add_argument("--only", default="", help="run the faults whose name holds this")
    parser.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(parser.parse_args()))
