"""No event lost, whatever fails (issue 14): simulated panels with their own buffers against
a real Mosquitto (deploy's config) and `accessd serve` as a subprocess on real PostgreSQL.
Each fault ends with every panel's buffer confirmed and, counted from those buffers against
the database, lost = 0 and doubled = 0. bench/faults.py runs the same faults harder and
prints the figures and recovery times; nothing here is timed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.faults.events import Count, Rig, kill_broker, rig
from tests.faults.tcp_proxy import TcpProxy
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users

__all__ = ["mosquitto", "mqtt_users"]  # fixtures these tests use

# Each test runs accessd and a broker for several seconds: one worker takes them all.
pytestmark = pytest.mark.xdist_group("faults_events")

#: Events a second from each panel while a fault happens.
RATE = 100.0
#: The test's share of the issue's 10-minute backlog of 100,000 (bench/faults.py: all of it).
BACKLOG = 5000


@pytest.fixture
async def faults(
    db_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    mosquitto: MosquittoBroker,
    mqtt_users: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[Rig]:
    if engine.dialect.name != "postgresql":
        pytest.skip("the faults are PostgreSQL's (and `accessd serve` on a shared database)")
    async with rig(db_url, sessions, mosquitto, mqtt_users, tmp_path) as r:
        yield r


@dataclass
class Proxied:
    """A rig whose accessd reaches PostgreSQL through a proxy the test can fail."""

    rig: Rig
    proxy: TcpProxy


@pytest.fixture
async def proxied(
    db_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    mosquitto: MosquittoBroker,
    mqtt_users: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[Proxied]:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL behind a proxy")
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        async with rig(
            db_url,
            sessions,
            mosquitto,
            mqtt_users,
            tmp_path,
            accessd_db_url=proxy.url(db_url.rsplit("/", 1)[1]),
        ) as r:
            yield Proxied(r, proxy)
    finally:
        await proxy.close()


def nothing_lost(count: Count) -> None:
    assert count.generated > 0
    assert (count.lost, count.doubled, count.unconfirmed) == (0, 0, 0), count
    assert count.stored == count.generated


async def test_kill_9_of_accessd_under_load_loses_and_doubles_nothing(faults: Rig) -> None:
    await faults.accessd.start()
    await faults.start_panels()
    faults.load(RATE)
    for _ in range(2):
        await asyncio.sleep(2.0)
        # Between receipt (the broker has its PUBACK) and the batch's commit: the events
        # accessd held in memory are gone with it, and were never confirmed.
        await faults.accessd.kill()
        await asyncio.sleep(0.5)
        await faults.accessd.start()
    await asyncio.sleep(1.0)
    await faults.stop_load()
    await faults.all_confirmed()
    nothing_lost(await faults.count())


@pytest.mark.parametrize("outage", ["refused", "hanging"])
async def test_sigterm_during_a_database_outage_confirms_nothing_unwritten(
    proxied: Proxied, outage: str
) -> None:
    """Refused: connections fail at once. Hanging: they are accepted and never answered,
    so only the service's own bounds (statement and connect timeouts, the final flush)
    end its shutdown."""
    r, proxy = proxied.rig, proxied.proxy
    await r.accessd.start()
    await r.start_panels()
    r.load(RATE)
    await asyncio.sleep(2.0)
    if outage == "refused":
        await proxy.refuse()
    else:
        proxy.hang()
    await asyncio.sleep(2.0)
    # Shut down while it holds events it cannot write: they stay unconfirmed.
    await r.accessd.terminate(bound=40.0)
    await asyncio.sleep(1.0)
    await r.stop_load()
    assert sum(s.buffer.pending_count() for s in r.panels.values()) > 0
    await proxy.restore()
    await r.accessd.start()
    await r.all_confirmed()
    nothing_lost(await r.count())


async def test_broker_kill_9_with_accessd_away_loses_nothing(faults: Rig) -> None:
    await faults.accessd.start()
    await faults.start_panels()
    faults.load(RATE)
    await asyncio.sleep(1.5)
    await faults.accessd.terminate()
    # The broker queues the panels' events for accessd's kept session...
    await asyncio.sleep(2.0)
    # ...and dies with that queue before saving it.
    kill_broker(faults.broker)
    await asyncio.sleep(0.5)
    faults.broker.start()
    await asyncio.sleep(1.0)
    await faults.stop_load()
    await faults.accessd.start()
    await faults.all_confirmed()
    nothing_lost(await faults.count())


async def test_a_panels_backlog_uploaded_while_others_go_on_loses_nothing(faults: Rig) -> None:
    await faults.start_panels()
    # accessd is away while p1 piles up its backlog.
    faults.record("p1", BACKLOG)
    await faults.accessd.start()
    faults.load(RATE / 2)
    await asyncio.sleep(2.0)
    await faults.stop_load()
    await faults.all_confirmed()
    nothing_lost(await faults.count())


async def test_a_database_that_hangs_loses_nothing(proxied: Proxied) -> None:
    r, proxy = proxied.rig, proxied.proxy
    await r.accessd.start()
    await r.start_panels()
    r.load(RATE)
    await asyncio.sleep(2.0)
    proxy.hang()
    await asyncio.sleep(4.0)
    await proxy.restore()
    await asyncio.sleep(1.0)
    await r.stop_load()
    await r.all_confirmed()
    nothing_lost(await r.count())


async def test_one_of_two_instances_killed_under_load_loses_nothing(faults: Rig) -> None:
    """Both instances take every panel's events (each its own kept session) and store them
    idempotently; the one killed takes its unwritten batch with it, which the survivor had
    stored or the panels send again."""
    other = faults.another_instance("b")
    await faults.accessd.start()
    await other.start()
    try:
        await faults.start_panels()
        faults.load(RATE)
        await asyncio.sleep(2.0)
        await other.kill()
        await asyncio.sleep(2.0)
        await faults.stop_load()
        await faults.all_confirmed()
        nothing_lost(await faults.count())
    finally:
        await other.terminate(20.0)
