"""The demo's embedded broker (amqtt, MQTT 3.1.1, no shared subscriptions): logins and the
per-panel ACL hold, a panel is not sent another panel's retained messages, the gateway
decides and stores a panel's events through it on a plain request subscription, and
`accessd demo --broker embedded` runs end to end."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.demo.embedded_broker import EmbeddedBroker, embedded_broker_available
from accessd.demo.run import pick_broker
from accessd.events import EventBus
from accessd.models import DecisionEvent, PanelEvent
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.errors import MqttError
from drivers.mqtt.access import SERVICE_USER, panel_username
from drivers.mqtt.client import MqttClient, MqttConfig
from drivers.mqtt.topics import PanelTopics
from drivers.panel.session import PanelSession
from tests.conftest import Operators
from tests.e2e.test_demo import run_to_end, stored
from tests.gateway.test_gateway import POLICY, Site, _panel, _present
from tests.piv_helpers import ids_by_name, issue_piv_credential, piv_service
from tests.waiting import until

pytestmark = pytest.mark.skipif(
    not embedded_broker_available(), reason="amqtt (the embedded-broker extra) is not installed"
)

PANELS = (("hq", "p1"), ("hq", "p2"))


@pytest.fixture(scope="module")
def users() -> dict[str, str]:
    found = {SERVICE_USER: secrets.token_urlsafe(32)}
    found.update({panel_username(s, p): secrets.token_urlsafe(32) for s, p in PANELS})
    return found


@pytest.fixture(scope="module")
def amqtt(users: dict[str, str]) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker()
    broker.start(
        {
            "service": {"username": SERVICE_USER, "password": users[SERVICE_USER]},
            "panels": [
                {"site": s, "panel": p, "username": panel_username(s, p), "password": users[u]}
                for s, p in PANELS
                for u in [panel_username(s, p)]
            ],
        }
    )
    try:
        yield broker
    finally:
        broker.stop()


def client(broker: EmbeddedBroker, user: str, password: str, client_id: str) -> MqttClient:
    return MqttClient(
        MqttConfig(
            host="127.0.0.1",
            port=broker.port,
            client_id=client_id,
            username=user,
            password=password,
            protocol=3,
            timeout=5.0,
        )
    )


async def test_a_wrong_password_is_refused(amqtt: EmbeddedBroker, users: dict[str, str]) -> None:
    with pytest.raises(MqttError):
        await client(amqtt, "hq.p1", users["hq.p2"], "wrong").connect()


async def test_a_panel_may_not_subscribe_to_another_panels_topics(
    amqtt: EmbeddedBroker, users: dict[str, str]
) -> None:
    p1 = client(amqtt, "hq.p1", users["hq.p1"], "acl-p1")
    await p1.connect()
    try:
        with pytest.raises(MqttError):
            await p1.subscribe([(PanelTopics("hq", "p2").leaf("cred/#"), 1)])
    finally:
        await p1.disconnect()


async def test_a_panel_is_not_sent_another_panels_retained_snapshot(
    amqtt: EmbeddedBroker, users: dict[str, str]
) -> None:
    # amqtt 0.12.1 alone sends a connecting client the retained messages of every other
    # client's subscriptions; accessd.demo.embedded_broker keeps them to the subscriber.
    p1_topics, p2_topics = PanelTopics("hq", "p1"), PanelTopics("hq", "p2")
    p1 = client(amqtt, "hq.p1", users["hq.p1"], "leak-p1")
    p2 = client(amqtt, "hq.p2", users["hq.p2"], "leak-p2")
    service = client(amqtt, SERVICE_USER, users[SERVICE_USER], "leak-service")
    got: dict[str, list[str]] = {"p1": [], "p2": []}
    p1.on_message(lambda m: got["p1"].append(m.topic))
    p2.on_message(lambda m: got["p2"].append(m.topic))
    await p1.connect()
    await service.connect()
    try:
        # The broker is the module's: a gateway test may have left both panels' retained
        # snapshots on it, and a panel being sent its own is right. Only a leak counts here.
        for topics in (p1_topics, p2_topics):
            await service.publish(topics.leaf("cred/snapshot"), b"", 1, True)
        await p1.subscribe([(p1_topics.leaf("cred/#"), 1)])
        await service.publish(p1_topics.leaf("cred/snapshot"), b"{}", 1, True)
        await p2.connect()
        await p2.subscribe([(p2_topics.leaf("cred/#"), 1)])
        await until(lambda: bool(got["p1"]))
        await asyncio.sleep(0.5)
        assert got == {"p1": [p1_topics.leaf("cred/snapshot")], "p2": []}
    finally:
        await service.publish(p1_topics.leaf("cred/snapshot"), b"", 1, True)
        for c in (p1, p2, service):
            await c.disconnect()


@pytest.fixture
async def site(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
    amqtt: EmbeddedBroker,
    users: dict[str, str],
) -> AsyncIterator[Site]:
    async with piv_service(
        db_url,
        engine,
        bus,
        tmp_path,
        mqtt_gateway=True,
        mqtt_url=amqtt.url,
        mqtt_username=SERVICE_USER,
        mqtt_password=users[SERVICE_USER],
        mqtt_protocol=3,
        mqtt_shared_requests=False,
    ) as svc:
        http = svc.client
        card = svc.pki.issue_card(algorithms={"9a": "p256", "9e": "p256"})
        _person, cred = await issue_piv_credential(http, ops, "E1", card)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        state = svc.app.state.accessd
        await state.decisions.refresh()
        gateway = state.gateway
        assert gateway is not None
        await until(lambda: len(gateway.directory) == 2)
        fm = await ops.headers("facility_manager")
        doors = await ids_by_name(http, fm, "/v1/doors")
        readers = await ids_by_name(http, fm, "/v1/readers")
        yield Site(svc, gateway, card, cred, doors, readers, ops, sessions, amqtt, users, bus)


@pytest.fixture
async def panel(site: Site, tmp_path: Path) -> AsyncIterator[PanelSession]:
    session = await _panel(site, tmp_path, "p1", "Main entrance", "Main in", protocol=3)
    yield session
    await session.close()
    session.buffer.close()


async def test_the_gateway_decides_and_stores_events_through_the_embedded_broker(
    site: Site, panel: PanelSession
) -> None:
    result = await _present(site, panel)
    assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    panel.record("door_pos", door=site.doors["Main entrance"], data={"open": True})
    await until(lambda: panel.buffer.pending_count() == 0)
    await site.svc.app.state.accessd.decisions.store.flush()
    await site.gateway.events.flush()
    async with site.sessions() as s:
        decisions = (await s.execute(select(DecisionEvent.source, DecisionEvent.granted))).all()
        events = (await s.scalars(select(PanelEvent.type))).all()
    assert [tuple(r) for r in decisions] == [("mqtt", True)]
    assert "door_pos" in events


def test_the_demo_runs_its_panels_on_the_embedded_broker(tmp_path: Path) -> None:
    proc, out, err = run_to_end(tmp_path, "--broker", "embedded", "--exit-after", "15")
    assert proc.returncode == 0, err[-3000:]
    assert "embedded amqtt, MQTT 3.1.1" in out
    decisions, granted, events = stored(tmp_path / "demo.db")
    assert decisions > 0 and granted > 0 and events > 0, out[-3000:]


def test_auto_takes_the_embedded_broker_only_without_mosquitto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import accessd.demo.mosquitto

    monkeypatch.setattr(accessd.demo.mosquitto, "mosquitto_binary", lambda: "/usr/sbin/mosquitto")
    assert pick_broker("auto") == ("mosquitto", "")
    assert pick_broker("embedded") == ("embedded", "")
    monkeypatch.setattr(accessd.demo.mosquitto, "mosquitto_binary", lambda: None)
    kind, note = pick_broker("auto")
    assert (kind, "amqtt instead" in note) == ("embedded", True)
    kind, note = pick_broker("mosquitto")
    assert (kind, "mosquitto is not installed" in note) == (None, True)
