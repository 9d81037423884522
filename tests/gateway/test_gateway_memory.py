"""The gateway's logic over the in-memory broker (drivers.mqtt.memory), no Mosquitto: a
panel's card decided, a decision that fails answered with an error and logged and counted
while the gateway goes on, commands and their failures by type, a panel's will. The wire
itself is tests/gateway/test_gateway.py's, against the real broker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.errors import DeviceTimeout, DeviceUnavailable
from accessd.events import EventBus
from accessd.gateway.service import (
    CommandFailed,
    CommandTimedOut,
    MqttGateway,
    NoMqttPanel,
    PanelOffline,
)
from accessd.models import DecisionEvent
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers import tasks
from drivers.mqtt.config import Will
from drivers.mqtt.memory import MemoryBroker, MemoryLink
from drivers.mqtt.messages import ErrorReply, decode
from drivers.mqtt.topics import PanelTopics
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink
from drivers.panel.session import PanelConfig, PanelSession
from simulators.panel.reader import read_card
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial
from tests.conftest import Operators
from tests.gateway.test_gateway import POLICY
from tests.helpers import ok
from tests.piv_helpers import PivService, ids_by_name, issue_piv_credential, piv_service
from tests.waiting import until


@dataclass
class Site:
    svc: PivService
    broker: MemoryBroker
    service_link: MemoryLink
    gateway: MqttGateway
    card: CardMaterial
    doors: dict[str, int]
    readers: dict[str, int]
    ops: Operators
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def site(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
) -> AsyncIterator[Site]:
    async with piv_service(db_url, engine, bus, tmp_path) as svc:
        card = svc.pki.issue_card(algorithms={"9a": "p256", "9e": "p256"})
        await issue_piv_credential(svc.client, ops, "E1", card)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        state = svc.app.state.accessd
        await state.decisions.refresh()
        broker = MemoryBroker()
        link = broker.link("accessd")
        gateway = MqttGateway(link, sessions, state.decisions, state.authn, bus)
        state.gateway = gateway  # the API's door commands go through it
        await gateway.start()
        try:
            await until(lambda: len(gateway.directory) == 2)
            fm = await ops.headers("facility_manager")
            yield Site(
                svc,
                broker,
                link,
                gateway,
                card,
                await ids_by_name(svc.client, fm, "/v1/doors"),
                await ids_by_name(svc.client, fm, "/v1/readers"),
                ops,
                sessions,
            )
        finally:
            await gateway.stop()
            state.gateway = None


@pytest.fixture
async def panel(site: Site, tmp_path: Path) -> AsyncIterator[PanelSession]:
    topics = PanelTopics("hq", "p1")
    link = MqttPanelLink(
        site.broker.link("panel.hq.p1", will=Will(topics.status, b"offline", retain=True))
    )
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=site.doors["Main entrance"], readers=(site.readers["Main in"],)),),
        decide_timeout=3.0,
        request_timeout=3.0,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"))
    await session.start()
    await until(lambda: link.connected and len(session.cache) > 0, what="the panel's cache")
    yield session
    await session.close()
    session.buffer.close()


async def present(site: Site, session: PanelSession) -> Any:
    reader = site.readers["Main in"]
    await until(lambda: session.challenges_held(reader) > 0, what="accessd's challenges")
    return await session.present(await read_card(session, reader, VirtualPivCard(site.card)))


async def test_a_card_at_a_panel_is_decided_by_accessd_without_a_broker(
    site: Site, panel: PanelSession
) -> None:
    result = await present(site, panel)
    assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    await site.svc.app.state.accessd.decisions.store.flush()
    async with site.sessions() as s:
        stored = (await s.execute(select(DecisionEvent.source, DecisionEvent.granted))).all()
    assert [tuple(r) for r in stored] == [("mqtt", True)]


async def test_a_decision_that_raises_gets_an_error_reply_is_logged_and_counted(
    site: Site,
    panel: PanelSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    decisions = site.svc.app.state.accessd.decisions

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the decision path reached a database that is gone")

    monkeypatch.setattr(decisions, "decide_in_turn", broken)
    failures_before = tasks.FAILURES["mqtt gateway"]
    with caplog.at_level(logging.ERROR, logger="accessd.gateway.service"):
        result = await present(site, panel)
    # The panel hears at once that accessd failed (no wait for its deadline, no offline
    # grant): an error reply, which denies.
    assert (result.granted, result.reason, result.offline) == (False, "service_internal", False)
    assert site.gateway.counters["request_failed"] == 1
    assert tasks.FAILURES["mqtt gateway"] == failures_before + 1
    logged = [r for r in caplog.records if r.exc_info and "req/decide" in r.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError)  # type: ignore[index]

    monkeypatch.undo()  # the database is back: the same gateway answers again
    again = await present(site, panel)
    assert (again.granted, again.offline) == (True, False)


async def test_the_error_reply_carries_the_requests_id(site: Site, panel: PanelSession) -> None:
    # A 3.1.1 panel matches answers by the id in the payload only.
    watcher = site.broker.link("watcher")
    await watcher.connect()
    answers: list[bytes] = []
    watcher.on_message(lambda msg: answers.append(msg.payload))
    topics = PanelTopics("hq", "p1")
    await watcher.subscribe([(topics.rsp, 0)])

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("snapshot store failed")

    site.gateway.caches.send_snapshot = broken  # type: ignore[method-assign]
    await panel.link.publish(topics.leaf("req/snapshot"), b'{"v":1,"id":"snap-1"}')
    await until(lambda: answers)
    assert decode(ErrorReply, answers[0]) == ErrorReply(id="snap-1", error="internal")


async def test_commands_reach_the_panel_and_fail_by_type(site: Site, panel: PanelSession) -> None:
    door = site.doors["Main entrance"]
    result = await site.gateway.command(door, "unlock", {"seconds": 3})
    assert result.ok and result.state is not None and result.state.lock == "unlocked"

    with pytest.raises(CommandTimedOut) as timed_out:  # p2 is not connected
        await site.gateway.command(site.doors["Dock door"], "unlock", timeout=0.2)
    assert isinstance(timed_out.value, DeviceTimeout) and timed_out.value.reason == "timeout"

    with pytest.raises(NoMqttPanel) as no_panel:
        await site.gateway.command(999_999, "unlock")
    assert isinstance(no_panel.value, DeviceUnavailable) and no_panel.value.code == "no_panel"

    site.service_link.drop()
    with pytest.raises(PanelOffline) as offline:
        await site.gateway.command(door, "unlock")
    assert isinstance(offline.value, CommandFailed) and offline.value.status == 503


async def test_the_api_answers_a_failed_command_by_its_type(
    site: Site, panel: PanelSession
) -> None:
    officer = await site.ops.headers("security_officer")
    door = site.doors["Main entrance"]
    answer = ok(
        await site.svc.client.post(
            f"/v1/doors/{door}/commands", json={"verb": "unlock"}, headers=officer
        )
    )
    assert answer["ok"]
    site.service_link.drop()  # accessd's broker connection is down
    refused = await site.svc.client.post(
        f"/v1/doors/{door}/commands", json={"verb": "unlock"}, headers=officer
    )
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "offline"


async def test_a_panel_that_vanishes_is_reported_offline_by_its_will(
    site: Site, panel: PanelSession
) -> None:
    link = panel.link
    assert isinstance(link, MqttPanelLink)
    before = site.gateway.counters["panel_offline"]
    await link.partition(0.1)
    await until(lambda: site.gateway.counters["panel_offline"] > before)
    await until(lambda: panel.announced, what="the panel back")
    result = await present(site, panel)
    assert result.granted and not result.offline
