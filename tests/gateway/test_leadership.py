"""Cache-publisher leadership fails over cleanly: a database blip ends the leader's term
(its loops stopped) before another term starts, here or at another instance, so two sets
of publishing loops never run at once. PostgreSQL behind a TCP proxy that refuses or hangs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.db.engine import make_engine
from accessd.gateway.leader import Leadership
from drivers.tasks import TaskSet
from tests.conftest import _pg_admin, _pg_url
from tests.faults.tcp_proxy import TcpProxy
from tests.waiting import until

RETRY = 0.2


@dataclass
class Work:
    """What a leader runs: counts terms and how many run at once, across instances."""

    running: int = 0
    most: int = 0
    started: list[str] = field(default_factory=list)

    def lead(self, who: str) -> Callable[[], Awaitable[None]]:
        async def term() -> None:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(who)
            try:
                await asyncio.Event().wait()  # publish until cancelled
            finally:
                self.running -= 1

        return term


@dataclass
class Site:
    proxy: TcpProxy
    through_proxy: AsyncEngine
    direct: AsyncEngine


@pytest.fixture
async def site(templates: dict[str, str]) -> AsyncIterator[Site]:
    name = f"accessd_l_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"')
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    through = make_engine(proxy.url(name), connect_timeout=1.0, statement_timeout=1.0)
    direct = make_engine(_pg_url(name), connect_timeout=1.0, statement_timeout=1.0)
    try:
        yield Site(proxy, through, direct)
    finally:
        await proxy.restore()
        await through.dispose()
        await direct.dispose()
        await proxy.close()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("fault", ["refuse", "hang"])
async def test_a_blip_ends_the_term_before_the_next_begins(site: Site, fault: str) -> None:
    work = Work()
    leader = Leadership(site.through_proxy, retry=RETRY)
    tasks = TaskSet("test leadership")
    tasks.spawn(leader.run(work.lead("a")))
    try:
        await until(lambda: leader.leading and work.running == 1, what="first term")
        if fault == "refuse":
            await site.proxy.refuse()
        else:
            site.proxy.hang()
        await until(lambda: not leader.leading and work.running == 0, what="term ended")
        await site.proxy.restore()
        await until(lambda: leader.terms == 2 and work.running == 1, what="second term")
        assert work.most == 1, "two terms' loops ran at once"
    finally:
        await tasks.close()
    assert work.running == 0


async def test_the_lead_moves_to_the_other_instance_and_back(site: Site) -> None:
    work = Work()
    a = Leadership(site.through_proxy, retry=RETRY)
    b = Leadership(site.direct, retry=RETRY)
    tasks = TaskSet("test leadership")
    tasks.spawn(a.run(work.lead("a")))
    try:
        await until(lambda: a.leading, what="a leads")
        assert a.waited == 0.0  # nobody led before: a leads at once
        tasks.spawn(b.run(work.lead("b")))
        await asyncio.sleep(RETRY * 3)  # b tries, and must not lead while a does
        assert not b.leading
        await site.proxy.refuse()  # a's database goes away; its lock with its connection
        await until(lambda: b.leading and not a.leading, what="b takes the lead")
        # a's connection was cut, not closed: b waited out the time a takes to notice.
        assert b.waited > 0
        await site.proxy.restore()
        await asyncio.sleep(RETRY * 3)  # a is back and tries, but b holds the lock
        assert b.leading and not a.leading
        assert work.started == ["a", "b"]
        assert work.most == 1
    finally:
        await tasks.close()


async def test_a_failing_leader_gives_the_lock_back(site: Site) -> None:
    """The lock's connection is discarded, not pooled: pooled, it would hold the lock with
    nobody leading."""
    failures = 0

    async def crashes() -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("publishing failed")

    a = Leadership(site.direct, retry=RETRY)
    b = Leadership(site.direct, retry=RETRY)
    work = Work()
    tasks = TaskSet("test leadership")
    tasks.spawn(a.run(crashes))
    try:
        await until(lambda: failures >= 1, what="a's term failed")
        tasks.spawn(b.run(work.lead("b")))
        # b gets the lock in one of the gaps between a's failing terms.
        await until(lambda: b.leading, what="b leads")
    finally:
        await tasks.close()


async def test_after_a_clean_stop_the_next_leads_at_once(site: Site) -> None:
    """The heartbeat is cleared when a term ends cleanly (its work stopped first): the next
    holder has nobody to wait for."""
    work = Work()
    a = Leadership(site.direct, retry=RETRY)
    b = Leadership(site.direct, retry=RETRY)
    first = TaskSet("test leadership a")
    second = TaskSet("test leadership b")
    first.spawn(a.run(work.lead("a")))
    try:
        await until(lambda: a.leading, what="a leads")
        await asyncio.sleep(RETRY * 2)  # a few heartbeats
        await first.close()  # a stops: its work, then its heartbeat, then the lock
        second.spawn(b.run(work.lead("b")))
        await until(lambda: b.leading, what="b leads")
        assert b.waited == 0.0
        assert work.started == ["a", "b"] and work.most == 1
    finally:
        await first.close()
        await second.close()
