"""A decision row names the panel's request id, and the panel's access event naming the
same request marks it: used when the door acted on it, unused when the panel had given up
waiting and decided offline (the answer came after its timeout). Both databases, either
row arriving first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.decisions.service import DecisionService
from accessd.events import EventBus
from accessd.models import DecisionEvent, Facility, Panel, PanelEvent
from tests.service.test_decision_service import badge, make_site, operators_for_setup

__all__ = ["operators_for_setup"]  # a fixture these tests use


async def access_event(
    sessions: async_sessionmaker[AsyncSession], request: str, *, offline: bool
) -> None:
    async with sessions() as s:
        panel_id = await s.scalar(select(Panel.id))
        if panel_id is None:
            facility = await s.scalar(select(Facility.id))
            panel = Panel(facility_id=facility, name="p1", transport="mqtt")
            s.add(panel)
            await s.flush()
            panel_id = panel.id
        s.add(
            PanelEvent(
                panel_id=panel_id,
                event_id=str(uuid.uuid4()),
                seq=1,
                at=datetime.now(UTC),
                type="access",
                data={
                    "granted": not offline,
                    "reason": "x",
                    "offline": offline,
                    "request": request,
                },
            )
        )
        await s.commit()


async def used(sessions: async_sessionmaker[AsyncSession]) -> dict[str | None, bool | None]:
    async with sessions() as s:
        rows = await s.execute(select(DecisionEvent.request_id, DecisionEvent.used))
        return {request: was for request, was in rows}


async def test_the_access_event_marks_its_decision_used_or_late(
    sessions: async_sessionmaker[AsyncSession], operators_for_setup: None
) -> None:
    ids = await make_site(sessions)
    service = DecisionService(sessions, EventBus(), poll_interval=3600, usage_interval=3600)
    await service.start()
    try:
        # The event of the late one arrives before its decision row is written.
        await access_event(sessions, "late", offline=True)
        for request in ("on-time", "late", "no-event-yet"):
            service.decide(badge(ids), source="mqtt", request_id=request)
        service.decide(badge(ids), source="api")
        await service.store.flush()
        await access_event(sessions, "on-time", offline=False)
        assert await service.mark_usage() == 2
        assert await used(sessions) == {
            "on-time": True,
            "late": False,
            "no-event-yet": None,
            None: None,
        }
        await access_event(sessions, "no-event-yet", offline=False)
        assert await service.mark_usage() == 1  # marked rows are left alone
        assert (await used(sessions))["no-event-yet"] is True
    finally:
        await service.stop()
