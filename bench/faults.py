"""The "no event lost" faults of issue 14, harder than tests/faults/test_no_event_lost.py:
a higher event rate and the full 10-minute backlog of 100,000 events. Prints, per fault,
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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SELF.parent))

from accessd.db.engine import make_engine, make_sessionmaker  # noqa: E402
from accessd.db.migrate import upgrade  # noqa: E402
from drivers.mqtt.access import SERVICE_USER, panel_username  # noqa: E402
from tests.faults.events import PANELS, Rig, kill_broker, rig  # noqa: E402
from tests.faults.tcp_proxy import TcpProxy  # noqa: E402
from tests.mqtt_broker import MosquittoBroker  # noqa: E402

Fault = Callable[[Rig, TcpProxy, argparse.Namespace], Awaitable[float]]


async def kill_9_under_load(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    await r.accessd.start()
    r.load(args.rate)
    for _ in range(3):
        await asyncio.sleep(3.0)
        await r.accessd.kill()
        await asyncio.sleep(0.5)
        await r.accessd.start()
    await asyncio.sleep(1.0)
    await r.stop_load()
    return await r.all_confirmed(300)


async def sigterm_during_outage(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    return await _sigterm_while(r, proxy, args, hang=False)


async def sigterm_while_database_hangs(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    return await _sigterm_while(r, proxy, args, hang=True)


async def _sigterm_while(r: Rig, proxy: TcpProxy, args: argparse.Namespace, *, hang: bool) -> float:
    """SIGTERM while the database refuses connections, or (``hang``) accepts them and never
    answers: only accessd's own bounds end its shutdown."""
    await r.accessd.start()
    r.load(args.rate)
    await asyncio.sleep(3.0)
    if hang:
        proxy.hang()
    else:
        await proxy.refuse()
    await asyncio.sleep(10.0)
    took = await r.accessd.terminate(60.0)
    what = "while the database hangs" if hang else "during the outage"
    print(f"  SIGTERM {what}: stopped in {took:.1f} s", flush=True)
    await asyncio.sleep(2.0)
    await r.stop_load()
    await proxy.restore()
    await r.accessd.start()
    return await r.all_confirmed(300)


async def broker_kill_9_accessd_away(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    await r.accessd.start()
    r.load(args.rate)
    await asyncio.sleep(3.0)
    await r.accessd.terminate()
    await asyncio.sleep(10.0)
    kill_broker(r.broker)
    await asyncio.sleep(1.0)
    r.broker.start()
    await asyncio.sleep(2.0)
    await r.stop_load()
    await r.accessd.start()
    return await r.all_confirmed(300)


async def backlog(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    r.record("p1", args.backlog)
    await r.accessd.start()
    r.load(args.rate / 2)
    await asyncio.sleep(5.0)
    await r.stop_load()
    return await r.all_confirmed(600)


async def database_hangs(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    await r.accessd.start()
    r.load(args.rate)
    await asyncio.sleep(3.0)
    proxy.hang()
    await asyncio.sleep(15.0)
    await proxy.restore()
    await r.stop_load()
    return await r.all_confirmed(300)


async def one_of_two_killed(r: Rig, proxy: TcpProxy, args: argparse.Namespace) -> float:
    other = r.another_instance("b")
    await r.accessd.start()
    await other.start()
    try:
        r.load(args.rate)
        await asyncio.sleep(3.0)
        await other.kill()
        await asyncio.sleep(5.0)
        await r.stop_load()
        return await r.all_confirmed(300)
    finally:
        await other.terminate(20.0)


FAULTS: dict[str, Fault] = {
    "kill -9 of accessd, three times under load": kill_9_under_load,
    "SIGTERM during a database outage": sigterm_during_outage,
    "SIGTERM while the database hangs": sigterm_while_database_hangs,
    "broker kill -9 with accessd away": broker_kill_9_accessd_away,
    "one panel's backlog uploaded while the others go on": backlog,
    "a database that hangs 15 s": database_hangs,
    "one of two instances killed under load": one_of_two_killed,
}


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


async def one_fault(name: str, fault: Fault, args: argparse.Namespace) -> dict[str, object]:
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
                    recovery = await fault(r, proxy, args)
                    count = await r.count()
                    resent = sum(s.stats.resent for s in r.panels.values())
            finally:
                await proxy.close()
                await engine.dispose()
    finally:
        broker.stop()
    line: dict[str, object] = {"fault": name, **count.as_dict()}
    line |= {"resent": resent, "recovery_s": round(recovery, 2)}
    print(json.dumps(line), flush=True)
    return line


async def main(args: argparse.Namespace) -> None:
    chosen = {n: f for n, f in FAULTS.items() if not args.only or args.only in n}
    lines = [await one_fault(name, fault, args) for name, fault in chosen.items()]
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
    parser.add_argument("--rate", type=float, default=500.0, help="events/s from each panel")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--only", default="", help="run the faults whose name holds this")
    parser.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(parser.parse_args()))
