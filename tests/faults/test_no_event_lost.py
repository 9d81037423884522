"""No event lost, whatever fails (issue 14): simulated panels with their own buffers against
a real Mosquitto (deploy's config) and `accessd serve` as a subprocess on real PostgreSQL.
Each fault ends with every panel's buffer confirmed and, counted from those buffers against
the database, lost = 0 and doubled = 0. bench/faults.py runs the same faults harder and
prints the figures and recovery times; nothing here is timed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.faults import scenarios
from tests.faults.events import Count, Rig, rig
from tests.faults.scenarios import TEST
from tests.faults.tcp_proxy import TcpProxy
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users

__all__ = ["mosquitto", "mqtt_users"]  # fixtures these tests use

# Each test runs accessd and a broker for several seconds: one worker takes them all.
pytestmark = pytest.mark.xdist_group("faults_events")


@dataclass
class Faults:
    """A rig whose accessd reaches PostgreSQL through a proxy the test can fail, its
    panels started."""

    rig: Rig
    proxy: TcpProxy


@pytest.fixture
async def faults(
    db_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    mosquitto: MosquittoBroker,
    mqtt_users: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[Faults]:
    if engine.dialect.name != "postgresql":
        pytest.skip("the faults are PostgreSQL's (and `accessd serve` on a shared database)")
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
            await r.start_panels()
            yield Faults(r, proxy)
    finally:
        await proxy.close()


async def nothing_lost(f: Faults, scenario: scenarios.Scenario) -> scenarios.Outcome:
    """Runs ``scenario`` at the test pace; every panel's events stored once and confirmed."""
    outcome = await scenario(f.rig, f.proxy, TEST)
    count: Count = await f.rig.count()
    assert count.generated > 0
    assert (count.lost, count.doubled, count.unconfirmed) == (0, 0, 0), count
    assert count.stored == count.generated
    return outcome


async def test_kill_9_of_accessd_under_load_loses_and_doubles_nothing(faults: Faults) -> None:
    await nothing_lost(faults, scenarios.kill_9_under_load)


@pytest.mark.parametrize("outage", ["refused", "hanging"])
async def test_sigterm_during_a_database_outage_confirms_nothing_unwritten(
    faults: Faults, outage: str
) -> None:
    """Refused: connections fail at once. Hanging: they are accepted and never answered,
    so only the service's own bounds (statement and connect timeouts, the final flush)
    end its shutdown; what it could not write stays unconfirmed until it is back."""
    scenario = (
        scenarios.sigterm_during_outage
        if outage == "refused"
        else scenarios.sigterm_while_database_hangs
    )
    outcome = await nothing_lost(faults, scenario)
    assert outcome.held_at_stop > 0


async def test_broker_kill_9_with_accessd_away_loses_nothing(faults: Faults) -> None:
    await nothing_lost(faults, scenarios.broker_kill_9_accessd_away)


async def test_a_panels_backlog_uploaded_while_others_go_on_loses_nothing(faults: Faults) -> None:
    await nothing_lost(faults, scenarios.backlog)


async def test_a_database_that_hangs_loses_nothing(faults: Faults) -> None:
    await nothing_lost(faults, scenarios.database_hangs)


async def test_one_of_two_instances_killed_under_load_loses_nothing(faults: Faults) -> None:
    await nothing_lost(faults, scenarios.one_of_two_killed)
