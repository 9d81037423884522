"""The panel session against a real Mosquitto with the project's config and ACL: offline
decisions when accessd is silent, no event lost or doubled across outages, deltas out of
order, commands, the last will."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers.mqtt.access import SERVICE_USER
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.messages import (
    Command,
    CommandResult,
    CredDelta,
    CredentialRef,
    DecideRequest,
    Event,
    EventAck,
    SnapshotRequest,
    decode,
    encode,
)
from drivers.mqtt.topics import SERVICE_FEEDS, PanelTopics, parse
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import PanelConfig, PanelSession, Presentation
from drivers.tasks import TaskSet
from tests.drivers.panel.panel_helpers import CardKey, entry, snapshot
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users  # noqa: F401
from tests.waiting import until

TOPICS = PanelTopics("hq", "p1")
_SERVICE_IDS = itertools.count()
CARD = CardKey.new("holder")
Panel = tuple[PanelSession, MqttPanelLink]


class Service:
    """Plays accessd's side of the broker: records what panels send, sends what it is told,
    and confirms every event on the panel's ack topic (accessd would, after its commit)."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.messages: list[IncomingMessage] = []
        self.tasks = TaskSet("test service")
        client.on_message(self._received)

    def _received(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        if "/evt/" in message.topic and not self.tasks.closed:
            parsed = parse(message.topic)
            ack = EventAck(seqs=[decode(Event, message.payload).seq])
            topic = PanelTopics(parsed.site, parsed.panel).ack
            self.tasks.spawn(self.client.publish(topic, encode(ack), 1))

    def on(self, suffix: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic.endswith(suffix)]

    def events(self, kind: str) -> list[Event]:
        return [
            decode(Event, m.payload)
            for m in self.messages
            if "/evt/" in m.topic and m.topic.endswith(kind)
        ]


@pytest.fixture
async def service(mosquitto: MosquittoBroker, mqtt_users: dict[str, str]) -> AsyncIterator[Service]:  # noqa: F811
    client = MqttClient(
        MqttConfig(
            host="127.0.0.1",
            port=mosquitto.port,
            client_id=f"test-service-{next(_SERVICE_IDS)}",
            # A session the broker keeps (and persists over a restart), as accessd's own.
            clean_start=False,
            username=SERVICE_USER,
            password=mqtt_users[SERVICE_USER],
            reconnect_min_delay=1,
            reconnect_max_delay=1,
        )
    )
    await client.connect()
    await client.subscribe([(t, 1) for t in SERVICE_FEEDS] + [("ac/v1/+/+/req/#", 1)])
    service = Service(client)
    yield service
    await service.tasks.close()
    await client.disconnect()


@pytest.fixture
async def panel(
    mosquitto: MosquittoBroker,  # noqa: F811
    mqtt_users: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[Panel]:
    link = MqttPanelLink(
        panel_mqtt_config(
            "hq", "p1", host="127.0.0.1", port=mosquitto.port, password=mqtt_users["hq.p1"]
        ),
        retry_seconds=0.2,
    )
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        decide_timeout=0.3,
        request_timeout=0.2,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"))
    session.cache.apply_snapshot(snapshot([entry("cert_sha256", CARD.sha256, {"1": "always"})]))
    await session.start()
    # Subscribed, not just connected: a delta sent before the SUBACK would be lost.
    await until(lambda: session.announced)
    yield session, link
    await session.close()
    session.buffer.close()


def presentation() -> Presentation:
    return Presentation(
        reader=1,
        credential=CredentialRef(kind="cert_sha256", value=CARD.sha256),
        evidence=("pki_cak",),
        proof=CARD.proof(b"a challenge"),
    )


async def test_a_panel_that_gets_no_answer_decides_from_its_cache(
    service: Service, panel: Panel
) -> None:
    session, _link = panel
    result = await session.present(presentation())
    await until(lambda: bool(service.on("/req/decide")))
    request = decode(DecideRequest, service.on("/req/decide")[-1])
    assert request.reply_to == TOPICS.rsp
    assert (result.granted, result.reason, result.offline) == (True, "offline_granted", True)
    await until(lambda: bool(service.events("access")))
    assert service.events("access")[-1].data["offline"] is True


async def test_events_from_an_outage_all_arrive_once(service: Service, panel: Panel) -> None:
    session, link = panel
    partition = asyncio.create_task(link.partition(1.0))
    await until(lambda: not link.connected)
    await until(lambda: b"offline" in service.on("/hq/p1/status"))  # the will, retained
    recorded = [session.record("tamper", data={"n": i}) for i in range(300)]
    await partition
    await until(lambda: session.buffer.pending_count() == 0)
    await until(lambda: len(service.events("tamper")) >= 300)
    await asyncio.sleep(0.2)  # anything doubled would arrive now
    ids = Counter(e.event_id for e in service.events("tamper"))
    assert set(ids) == {e.event_id for e in recorded}
    assert max(ids.values()) == 1
    assert service.on("/hq/p1/status")[-1] == b"online"


async def test_events_recorded_while_the_broker_restarts_arrive_once(
    mosquitto: MosquittoBroker,  # noqa: F811
    service: Service,
    panel: Panel,
) -> None:
    session, link = panel
    mosquitto.stop()
    await until(lambda: not link.connected)
    recorded = [session.record("power", data={"n": i}) for i in range(100)]
    mosquitto.start()
    await until(lambda: link.connected, 30)
    await until(lambda: session.buffer.pending_count() == 0, 30)
    await until(lambda: service.client.connected.is_set(), 30)
    await until(lambda: len(service.events("power")) >= 100, 30)
    await asyncio.sleep(0.2)
    ids = Counter(e.event_id for e in service.events("power"))
    assert set(ids) == {e.event_id for e in recorded}
    assert max(ids.values()) == 1


async def test_a_delta_out_of_order_makes_the_panel_ask_for_a_snapshot(
    service: Service, panel
) -> None:  # type: ignore[no-untyped-def]
    session, _link = panel
    await service.client.publish(
        TOPICS.leaf("cred/delta"), encode(CredDelta(from_version=7, version=8))
    )
    await until(lambda: bool(service.on("/hq/p1/req/snapshot")))
    request = decode(SnapshotRequest, service.on("/hq/p1/req/snapshot")[-1])
    assert request.have_version == 1
    assert session.cache.version == 1


async def test_commands_are_obeyed_and_an_expired_one_refused(
    service: Service, panel: Panel
) -> None:
    session, _link = panel
    now = datetime.now(UTC)
    fresh = Command(
        id="c1", verb="unlock", args={"seconds": 30}, expires_at=now + timedelta(seconds=30)
    )
    stale = Command(
        id="c2", verb="unlock", args={"seconds": 30}, expires_at=now - timedelta(seconds=1)
    )
    await service.client.publish(TOPICS.command(1, "unlock"), encode(fresh))
    await until(lambda: len(service.on("/hq/p1/res/cmd")) == 1)
    assert not session.doors[1].locked
    session.doors[1].position_changed(False)  # relock
    await service.client.publish(TOPICS.command(1, "unlock"), encode(stale))
    await until(lambda: len(service.on("/hq/p1/res/cmd")) == 2)
    first, second = (decode(CommandResult, p) for p in service.on("/hq/p1/res/cmd"))
    assert (first.id, first.ok) == ("c1", True)
    assert (second.id, second.ok, second.error) == ("c2", False, "expired")
    assert session.doors[1].locked
    states = [json.loads(p) for p in service.on("/hq/p1/state/1")]
    assert {"unlocked", "locked"} <= {s["lock"] for s in states}
