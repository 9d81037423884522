"""The gateway's side of the end-to-end acknowledgement (issue 14), on the in-memory broker
and a real database: a panel's event is confirmed only once its batch has committed, and
an event sent again is stored once and confirmed again."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from accessd.models import PanelEvent
from drivers.mqtt.messages import EventAck, decode, encode
from drivers.panel.session import PanelSession
from tests.gateway.test_gateway_memory import Site, panel, site
from tests.waiting import until

__all__ = ["panel", "site"]  # fixtures these tests use


async def stored(site: Site, event_id: str) -> int:
    async with site.sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(PanelEvent).where(PanelEvent.event_id == event_id)
        )
    return int(count or 0)


async def test_an_event_is_confirmed_only_after_its_batch_commits(
    site: Site, panel: PanelSession
) -> None:
    events = site.gateway.events
    release = asyncio.Event()
    write = events._write_batch

    async def slow_commit(items: list[dict[str, Any]]) -> int:
        await release.wait()
        return await write(items)

    events._write_batch = slow_commit  # type: ignore[method-assign]
    try:
        received = site.gateway.counters["events"]
        event = panel.record("tamper")
        await until(lambda: site.gateway.counters["events"] > received, what="the event")
        await asyncio.sleep(0.5)  # several flush intervals: still writing, not confirmed
        assert panel.buffer.pending_count() == 1
        assert await stored(site, event.event_id) == 0
        release.set()
        await until(lambda: panel.buffer.pending_count() == 0, what="the confirmation")
        assert await stored(site, event.event_id) == 1
    finally:
        events._write_batch = write  # type: ignore[method-assign]
        release.set()


async def test_an_event_sent_again_is_stored_once_and_confirmed_again(
    site: Site, panel: PanelSession
) -> None:
    acks: list[EventAck] = []
    listener = site.broker.link("listener")
    listener.on_message(lambda m: acks.append(decode(EventAck, m.payload)))
    await listener.connect()
    await listener.subscribe([(panel.topics.ack, 1)])
    try:
        event = panel.record("tamper")
        await until(lambda: panel.buffer.pending_count() == 0, what="the confirmation")
        # The same event again, as a panel sends what it has not heard confirmed.
        topic = panel.topics.event(event.door or "panel", event.type)
        await panel.link.publish(topic, encode(event))
        await until(lambda: sum(a.seqs.count(event.seq) for a in acks) >= 2, what="second ack")
        assert await stored(site, event.event_id) == 1
        assert site.gateway.events.duplicates >= 1
    finally:
        await listener.disconnect()


async def test_an_event_refused_as_spoofed_is_recorded_and_confirmed_not_sent_forever(
    site: Site, panel: PanelSession
) -> None:
    # A door that is not this panel's (a policy change moved it, or a misconfigured panel):
    # refused every time it came, it would sit in the panel's window for good.
    event = panel.record("tamper", door=site.doors["Dock door"])
    await until(lambda: panel.buffer.pending_count() == 0, what="the confirmation")
    async with site.sessions() as s:
        refusals = (
            await s.scalars(select(PanelEvent.data).where(PanelEvent.type == "spoofed"))
        ).all()
    assert [r.get("event_id") for r in refusals] == [event.event_id]
    assert await stored(site, event.event_id) == 0
