"""The faults of issue 14, each written once: tests/faults/test_no_event_lost.py runs them at
the test pace and asserts, bench/faults.py runs them harder and prints the figures.

A scenario takes a rig whose panels are started (and, for the database faults, the proxy
in front of PostgreSQL), injects its fault under load, ends the load, brings what it broke
back, and returns when every panel's buffer is confirmed: the seconds that last wait took
(the recovery) and, for a stop during an outage, how many events the panels still held
unconfirmed when accessd was gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.events import Rig, kill_broker
from tests.faults.tcp_proxy import TcpProxy


@dataclass(frozen=True)
class Pace:
    """How hard and how long a scenario runs."""

    #: Events a second from each panel while a fault happens.
    rate: float
    #: Seconds of load before a fault, and between a fault's steps that take time.
    hold: float
    #: Seconds a fault lasts (an outage, accessd away).
    outage: float
    #: Seconds for a restart to settle (a process coming back, a broker restarting).
    gap: float
    #: kill -9 rounds.
    kills: int
    #: Events one panel piles up while accessd is away.
    backlog: int
    #: Seconds to wait for every event to be confirmed.
    confirm: float


#: tests/faults: short, so the suite stays quick; the backlog is a share of the issue's.
TEST = Pace(rate=100.0, hold=2.0, outage=2.0, gap=0.5, kills=2, backlog=5000, confirm=90.0)
#: bench/faults.py: the issue's 10-minute backlog of 100,000, at a higher rate.
BENCH = Pace(rate=500.0, hold=3.0, outage=10.0, gap=1.0, kills=3, backlog=100_000, confirm=600.0)


@dataclass(frozen=True)
class Outcome:
    recovery_s: float
    #: Events the panels held unconfirmed when accessd had stopped (stops only).
    held_at_stop: int = 0
    #: How long accessd took to stop (stops only).
    stop_s: float = 0.0


Scenario = Callable[[Rig, TcpProxy | None, Pace], Awaitable[Outcome]]


def _held(r: Rig) -> int:
    return sum(s.buffer.pending_count() for s in r.panels.values())


async def kill_9_under_load(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    await r.accessd.start()
    r.load(pace.rate)
    for _ in range(pace.kills):
        await asyncio.sleep(pace.hold)
        # Between receipt (the broker has its PUBACK) and the batch's commit: the events
        # accessd held in memory are gone with it, and were never confirmed.
        await r.accessd.kill()
        await asyncio.sleep(pace.gap)
        await r.accessd.start()
    await asyncio.sleep(pace.gap * 2)
    await r.stop_load()
    return Outcome(await r.all_confirmed(pace.confirm))


async def sigterm_during_outage(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    return await _sigterm_while(r, proxy, pace, hang=False)


async def sigterm_while_database_hangs(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    return await _sigterm_while(r, proxy, pace, hang=True)


async def _sigterm_while(r: Rig, proxy: TcpProxy | None, pace: Pace, *, hang: bool) -> Outcome:
    """SIGTERM while the database refuses connections, or (``hang``) accepts them and never
    answers: only accessd's own bounds (statement and connect timeouts, the final flush)
    end its shutdown, and what it could not write stays unconfirmed."""
    assert proxy is not None
    await r.accessd.start()
    r.load(pace.rate)
    await asyncio.sleep(pace.hold)
    if hang:
        proxy.hang()
    else:
        await proxy.refuse()
    await asyncio.sleep(pace.outage)
    took = await r.accessd.terminate(60.0)
    await asyncio.sleep(pace.gap * 2)
    await r.stop_load()
    held = _held(r)
    await proxy.restore()
    await r.accessd.start()
    return Outcome(await r.all_confirmed(pace.confirm), held_at_stop=held, stop_s=took)


async def broker_kill_9_accessd_away(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    await r.accessd.start()
    r.load(pace.rate)
    await asyncio.sleep(pace.hold)
    await r.accessd.terminate()
    # The broker queues the panels' events for accessd's kept session...
    await asyncio.sleep(pace.outage)
    # ...and dies with that queue before saving it.
    kill_broker(r.broker)
    await asyncio.sleep(pace.gap)
    r.broker.start()
    await asyncio.sleep(pace.gap * 2)
    await r.stop_load()
    await r.accessd.start()
    return Outcome(await r.all_confirmed(pace.confirm))


async def backlog(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    # accessd is away while p1 piles up its backlog, then uploads it as the others go on.
    r.record("p1", pace.backlog)
    await r.accessd.start()
    r.load(pace.rate / 2)
    await asyncio.sleep(pace.hold)
    await r.stop_load()
    return Outcome(await r.all_confirmed(pace.confirm))


async def database_hangs(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    assert proxy is not None
    await r.accessd.start()
    r.load(pace.rate)
    await asyncio.sleep(pace.hold)
    proxy.hang()
    await asyncio.sleep(pace.outage * 2)
    await proxy.restore()
    await asyncio.sleep(pace.gap * 2)
    await r.stop_load()
    return Outcome(await r.all_confirmed(pace.confirm))


async def one_of_two_killed(r: Rig, proxy: TcpProxy | None, pace: Pace) -> Outcome:
    """Both instances take every panel's events (each its own kept session) and store them
    idempotently; the one killed takes its unwritten batch with it, which the survivor had
    stored or the panels send again."""
    other = r.another_instance("b")
    await r.accessd.start()
    await other.start()
    try:
        r.load(pace.rate)
        await asyncio.sleep(pace.hold)
        await other.kill()
        await asyncio.sleep(pace.hold)
        await r.stop_load()
        return Outcome(await r.all_confirmed(pace.confirm))
    finally:
        await other.terminate(20.0)


#: Each fault by the name the bench prints.
FAULTS: dict[str, Scenario] = {
    "kill -9 of accessd under load": kill_9_under_load,
    "SIGTERM during a database outage": sigterm_during_outage,
    "SIGTERM while the database hangs": sigterm_while_database_hangs,
    "broker kill -9 with accessd away": broker_kill_9_accessd_away,
    "one panel's backlog uploaded while the others go on": backlog,
    "a database that hangs": database_hangs,
    "one of two instances killed under load": one_of_two_killed,
}
