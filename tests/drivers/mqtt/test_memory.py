"""drivers.mqtt.memory: the in-memory broker and its links, which the gateway's and the
panels' logic is tested over without Mosquitto."""

from __future__ import annotations

import asyncio
import json

import pytest

from drivers.errors import MqttNotConnected, MqttTimeout
from drivers.mqtt.config import IncomingMessage, Will
from drivers.mqtt.memory import MemoryBroker, MemoryLink, topic_matches
from drivers.mqtt.topics import SERVICE_REQUESTS, PanelTopics
from tests.waiting import until

P1 = PanelTopics("hq", "p1")


class Inbox:
    def __init__(self, link: MemoryLink) -> None:
        self.messages: list[IncomingMessage] = []
        link.on_message(self.messages.append)

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.messages]


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("ac/v1/+/+/req/#", "ac/v1/hq/p1/req/decide", True),
        ("ac/v1/+/+/req/#", "ac/v1/hq/p1/evt/1/card", False),
        ("ac/v1/#", "ac/v1", True),  # '#' also matches its parent level
        ("ac/v1/+", "ac/v1/hq/p1", False),
        ("ac/v1/hq/p1/status", "ac/v1/hq/p1/status", True),
        ("#", "$SYS/broker/uptime", False),  # wildcards never match $ topics
    ],
)
def test_topic_filters(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


async def connected_pair() -> tuple[MemoryLink, MemoryLink]:
    service, panel = MemoryBroker.pair()
    await service.connect()
    await panel.connect()
    return service, panel


async def test_a_message_reaches_the_subscriber_on_a_later_loop_pass() -> None:
    service, panel = await connected_pair()
    inbox = Inbox(service)
    assert await service.subscribe([(f"{P1.prefix}/evt/#", 1)]) == [1]
    await panel.publish(P1.event(1, "card"), b"card")
    await panel.publish(P1.status, b"not subscribed")
    assert inbox.messages == []  # not inside publish(), as over a socket
    await until(lambda: inbox.messages, what="the event")
    await asyncio.sleep(0.01)
    assert [(m.topic, m.payload, m.retain) for m in inbox.messages] == [
        (P1.event(1, "card"), b"card", False)
    ]


async def test_retained_messages_go_to_later_subscribers_and_an_empty_one_clears() -> None:
    service, panel = await connected_pair()
    await panel.publish(P1.status, b"online", retain=True)
    await panel.publish(P1.birth, b"{}", retain=True)
    await panel.publish(P1.birth, b"", retain=True)
    await asyncio.sleep(0.01)
    inbox = Inbox(service)
    await service.subscribe([(f"{P1.prefix}/#", 1)])
    await until(lambda: inbox.messages)
    await asyncio.sleep(0.01)
    assert [(m.topic, m.payload, m.retain) for m in inbox.messages] == [
        (P1.status, b"online", True)
    ]


async def test_a_shared_subscription_deals_each_message_to_one_member() -> None:
    broker = MemoryBroker()
    members = [broker.link(f"accessd-{i}") for i in range(2)]
    got: list[tuple[int, bytes]] = []
    for i, member in enumerate(members):
        await member.connect()
        member.on_message(lambda msg, i=i: got.append((i, msg.payload)))
        await member.subscribe([(SERVICE_REQUESTS, 1)])
    panel = broker.link("panel")
    await panel.connect()
    for n in range(10):
        await panel.publish(P1.leaf("req/decide"), b"%d" % n)
    await until(lambda: len(got) == 10)
    assert sorted(int(p) for _, p in got) == list(range(10))
    assert {i for i, _ in got} == {0, 1}


async def test_a_dropped_link_leaves_its_will_and_comes_back_subscribed() -> None:
    broker = MemoryBroker()
    service = broker.link("accessd")
    panel = broker.link("panel", will=Will(P1.status, b"offline", retain=True))
    await service.connect()
    await panel.connect()
    downs: list[str] = []
    ups: list[None] = []
    panel.on_disconnected(downs.append)
    panel.on_connected(lambda: ups.append(None))
    watch, commands = Inbox(service), Inbox(panel)
    await service.subscribe([(P1.status, 1)])
    await panel.subscribe([(f"{P1.prefix}/cmd/#", 1)])

    panel.drop()
    assert downs == ["connection lost"] and not panel.connected.is_set()
    await until(lambda: watch.payloads() == [b"offline"])
    assert broker.retained[P1.status].payload == b"offline"
    with pytest.raises(MqttNotConnected):
        await panel.publish(P1.status, b"online")
    routed = broker.published
    await service.publish(P1.command(1, "unlock"), b"while away")  # lost, as QoS 0 would be
    await until(lambda: broker.published > routed, what="the broker routed it")

    panel.reconnect()
    assert ups == [None]
    await service.publish(P1.command(1, "unlock"), b"after")
    await until(lambda: commands.payloads() == [b"after"])


async def test_a_partition_keeps_the_link_off_for_its_time() -> None:
    _service, panel = await connected_pair()
    cut = asyncio.create_task(panel.partition(0.2))
    await until(lambda: not panel.connected.is_set())
    panel.reconnect()  # refused while partitioned
    assert not panel.connected.is_set()
    await cut
    assert panel.connected.is_set()


@pytest.mark.parametrize("protocol", [5, 3])
async def test_request_and_reply_over_the_pair(protocol: int) -> None:
    broker = MemoryBroker()
    service = broker.link("accessd")
    panel = broker.link("panel", protocol=5 if protocol == 5 else 3)
    await service.connect()
    await panel.connect()

    def answer(msg: IncomingMessage) -> None:
        body = json.loads(msg.payload)
        reply = json.dumps({"id": body["id"], "granted": True}).encode()
        asyncio.get_running_loop().create_task(service.respond(msg, reply, topic=body["reply_to"]))

    service.on_message(answer)
    await service.subscribe([(SERVICE_REQUESTS, 1)])
    others = Inbox(panel)
    await panel.subscribe([(P1.rsp, 1)])
    request = json.dumps({"id": "r-1", "reply_to": P1.rsp}).encode()
    reply = await panel.request(
        P1.leaf("req/decide"), request, reply_topic=P1.rsp, request_id="r-1", timeout=5
    )
    assert json.loads(reply.payload) == {"id": "r-1", "granted": True}
    # MQTT 5 carries the id as correlation data; a 3.1.1 link gets none and the payload
    # id matches.
    assert reply.correlation_data == (b"r-1" if protocol == 5 else None)
    await asyncio.sleep(0.01)
    assert others.messages == []  # the reply went to the caller only


async def test_a_request_nobody_answers_times_out_and_a_closed_link_refuses() -> None:
    _service, panel = await connected_pair()
    with pytest.raises(MqttTimeout):
        await panel.request(
            P1.leaf("req/decide"), b"{}", reply_topic=P1.rsp, request_id="lost", timeout=0.05
        )
    await panel.disconnect()
    with pytest.raises(MqttNotConnected):
        await panel.publish(P1.status, b"x")
